"""Uploaded models run in a worker process with hard limits; the server process never loads them.

Limits (MVL_UPLOAD_MEMORY_MB, MVL_UPLOAD_SECONDS; defaults 2048 MB and 120 s): the worker sets its own
address space (RLIMIT_AS), CPU time (RLIMIT_CPU: seconds x 2 cores) and lowest scheduling priority (nice 19,
so interactive requests go first) before it imports anything; this side watches its resident memory and
wall time. A breach kills it; a worker
that dies from a signal (a native crash in a runtime) becomes a clear error. The server carries on either way.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines.lab.custom_model import CustomModelError, Form, UploadReport
from pipelines.lab.upload_worker import PROGRESS_FILE

ROOT = Path(__file__).resolve().parents[2]
POLL_S = 0.05


class SandboxError(CustomModelError):
    """The worker hit a limit or died; the message says which, in words."""


@dataclass(frozen=True)
class SandboxLimits:
    memory_mb: int = 2048
    seconds: float = 120.0

    @classmethod
    def from_env(cls) -> SandboxLimits:
        return cls(int(os.environ.get("MVL_UPLOAD_MEMORY_MB", cls.memory_mb)),
                   float(os.environ.get("MVL_UPLOAD_SECONDS", cls.seconds)))

    @property
    def memory_bytes(self) -> int:
        return self.memory_mb * 2**20

    def describe(self) -> str:
        return f"{self.memory_mb / 1024:g} GB of memory and {self.seconds:g} s"


def _resident_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _outcome(process: subprocess.Popen, workdir: Path, limits: SandboxLimits, breach: str | None) -> UploadReport:
    memory_message = f"the model needs more than the {limits.memory_mb / 1024:g} GB of memory an upload may use here"
    if breach == "memory":
        raise SandboxError(memory_message + "; it was stopped")
    if breach == "time":
        raise SandboxError(f"the model took longer than the {limits.seconds:g} s an upload may run here; it was stopped")
    code = process.returncode
    if code < 0:
        name = signal.Signals(-code).name
        if -code == signal.SIGXCPU:
            raise SandboxError(f"the model used more than the {limits.seconds:g} s of CPU time an upload may use "
                               "here; it was stopped")
        raise SandboxError(f"the runtime crashed on this model (the worker died from {name}); the app carries on")
    result = workdir / "result.json"
    if code != 0 or not result.is_file():
        raise SandboxError("the model could not be run: its worker ended without a result")
    answer = json.loads(result.read_text())
    result.unlink()
    if "report" in answer:
        return UploadReport.from_json(json.dumps(answer["report"]))
    if answer["error"] == "memory":
        raise SandboxError(answer["message"] or memory_message)
    if answer["error"] == "user":
        raise CustomModelError(answer["message"])
    raise SandboxError(f"the model could not be run ({answer['message']})")


def _read_progress(path: Path) -> tuple[int, int, str] | None:
    try:
        told = json.loads(path.read_text())
        return int(told["done"]), int(told["total"]), str(told["what"])[:200]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not written yet


def run_upload(model: Path, labels: Path | None, photo: Path, form: Form, workdir: Path, threads: int,
               limits: SandboxLimits | None = None,
               progress: Callable[[int, int, str], None] | None = None) -> UploadReport:
    """The upload's analysis, done by a limited worker process in `workdir` (the session's folder);
    `progress(steps done, steps in all, the step starting)` hears of each step as the worker starts it."""
    limits = limits or SandboxLimits.from_env()
    progress_file, told = workdir / PROGRESS_FILE, None
    job = workdir / "job.json"
    job.write_text(json.dumps({"model": str(model.resolve()), "labels": str(labels.resolve()) if labels else None,
                               "photo": str(photo.resolve()),
                               "form": form.__dict__, "workdir": str(workdir), "threads": threads,
                               "memory_bytes": limits.memory_bytes, "seconds": limits.seconds}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MVL_MODEL", "HF_TOKEN"))}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(threads))
    with (workdir / "worker.log").open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "pipelines.lab.upload_worker", str(job)], cwd=workdir,
                                   env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        start, breach = time.monotonic(), None
        while process.poll() is None:
            if _resident_bytes(process.pid) > limits.memory_bytes:
                breach = "memory"
            elif time.monotonic() - start > limits.seconds:
                breach = "time"
            if breach:
                _kill(process)
                break
            if progress and progress_file.is_file():
                step = _read_progress(progress_file)
                if step and step != told:
                    told = step
                    progress(*step)
            time.sleep(POLL_S)
    job.unlink(missing_ok=True)
    progress_file.unlink(missing_ok=True)
    return _outcome(process, workdir, limits, breach)
