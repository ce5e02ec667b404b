"""The worker process that does everything with an uploaded model, under the limits the sandbox set:

    python -m pipelines.lab.upload_worker JOB.json      # writes result.json beside it

It lowers its own priority and sets its resource limits before importing anything heavy, then a static check
from the graph's shapes (refused with the figure when a tensor, or all of them, would not fit the memory
limit), then the upload's analysis. The result is JSON: the server never unpickles anything a worker wrote,
and never loads the uploaded graph itself.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path

HEADROOM_BYTES = 1 << 30  # address space the interpreter and its libraries map before any model runs
PROGRESS_FILE = "progress.json"
OUT_OF_MEMORY = ("failed to allocate memory", "bad_alloc", "bad allocation", "out of memory", "cannot allocate")


def out_of_memory(exc: BaseException) -> bool:
    """The runtimes report a refused allocation (the address-space limit) in their own words."""
    return isinstance(exc, MemoryError) or any(w in str(exc).lower() for w in OUT_OF_MEMORY)


def apply_limits(memory_bytes: int, seconds: float) -> None:
    os.nice(19)
    address_space = memory_bytes + HEADROOM_BYTES
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    cpu = int(seconds * 2) + 1  # two cores' worth of the wall-time limit
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def static_check(model: Path, height: int, width: int, memory_bytes: int) -> str | None:
    """Why the model cannot fit, from its shapes alone; None when it may."""
    from models.graph_stats import GraphStatsError, graph_memory
    from pipelines.lab.custom_model import RUNTIMES

    runtime = RUNTIMES.get(model.suffix.lower())
    if runtime is None:
        return None  # loading it names the problem
    try:
        memory = graph_memory(model, runtime, (1, 3, height, width) if runtime == "onnx" else None)
    except GraphStatsError:
        return None  # not readable as a graph: loading it says why
    limit = f"{memory_bytes / 2**30:g} GB"
    if memory.largest_bytes > memory_bytes:
        return (f"the model needs more than the {limit} of memory an upload may use here: one of its tensors "
                f"alone is {memory.largest_bytes / 2**30:.1f} GB ({memory.largest})")
    if memory.total_bytes > memory_bytes:
        return (f"the model needs more than the {limit} of memory an upload may use here: its weights and the "
                f"tensors alive at once add up to {memory.total_bytes / 2**30:.1f} GB")
    return None


def tell_progress(workdir: Path, done: int, total: int, what: str) -> None:
    """The step starting, for the server to show: written whole (a rename), so it is never read half-written."""
    partial = workdir / (PROGRESS_FILE + ".partial")
    partial.write_text(json.dumps({"done": done, "total": total, "what": what}))
    os.replace(partial, workdir / PROGRESS_FILE)


def run(job: dict) -> dict:
    from pipelines.common.photos import PhotoError
    from pipelines.lab.custom_model import CustomModelError, Form, analyse_upload

    form = Form(**job["form"])
    refused = static_check(Path(job["model"]), form.height, form.width, job["memory_bytes"])
    if refused:
        return {"error": "memory", "message": refused}
    try:
        report = analyse_upload(Path(job["model"]), Path(job["labels"]) if job["labels"] else None,
                                Path(job["photo"]), form, Path(job["workdir"]), job["threads"],
                                progress=lambda done, total, what: tell_progress(Path(job["workdir"]), done, total,
                                                                                 what))
        return {"report": json.loads(report.to_json())}
    except (CustomModelError, PhotoError) as exc:
        return {"error": "memory" if out_of_memory(exc) else "user", "message": "" if out_of_memory(exc) else str(exc)}


def main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    apply_limits(job["memory_bytes"], job["seconds"])
    for var, value in (("ORT_DISABLE_TELEMETRY", "1"), ("HF_HUB_DISABLE_TELEMETRY", "1")):
        os.environ.setdefault(var, value)
    try:
        answer = run(job)
    except Exception as exc:  # a runtime's own failure, whatever its type: reported, never raised into the server
        from pipelines.lab.custom_model import without_paths

        answer = {"error": "memory", "message": ""} if out_of_memory(exc) else \
            {"error": "failed", "message": f"{type(exc).__name__}: {without_paths(exc, Path(job['model']))}"}
    Path(job_path).with_name("result.json").write_text(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
