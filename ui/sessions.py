"""Per-session temporary folders: removed when the session ends, the server's own when it stops, and
leftovers of an earlier run (a crash) at startup."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

TEMP_PREFIXES = ("mvl-upload-", "mvl-export-", "mvl-album-", "mvl-examples-")
STALE_AFTER_S = 2 * 3600  # sessions keep their folders at most an hour
SESSION_TTL_S = 3600


_LIVE: dict[Path, int] = {}  # folders not yet removed -> the process that made them
_LIVE_LOCK = threading.Lock()


def new_workdir(prefix: str) -> Path:
    if prefix not in TEMP_PREFIXES:
        raise ValueError(f"unknown session folder kind {prefix!r}")
    path = Path(tempfile.mkdtemp(prefix=prefix))
    with _LIVE_LOCK:
        _LIVE[path] = os.getpid()
    return path


def remove_workdir(workdir) -> None:
    """A session's uploaded model, exports or album files go when the session ends or replaces them."""
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)
        with _LIVE_LOCK:
            _LIVE.pop(Path(workdir), None)


@atexit.register
def remove_live_workdirs() -> None:
    """Sessions still open when the server stops take their folders with them (a forked child that exits
    leaves its parent's alone)."""
    with _LIVE_LOCK:
        mine = [path for path, pid in _LIVE.items() if pid == os.getpid()]
    for path in mine:
        remove_workdir(path)


def remove_stale_temp(now: float | None = None) -> int:
    """Session folders left by a previous run (a crash, a restart): removed at startup."""
    now = now or time.time()
    removed = 0
    for path in Path(tempfile.gettempdir()).iterdir():
        if path.name.startswith(TEMP_PREFIXES) and path.is_dir() and now - path.stat().st_mtime > STALE_AFTER_S:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed
