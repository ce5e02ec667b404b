"""Per-session temporary folders: removed when the session ends, and leftovers of an earlier run at startup."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

TEMP_PREFIXES = ("mvl-upload-", "mvl-export-", "mvl-album-", "mvl-examples-")
STALE_AFTER_S = 2 * 3600  # sessions keep their folders at most an hour
SESSION_TTL_S = 3600


def new_workdir(prefix: str) -> Path:
    if prefix not in TEMP_PREFIXES:
        raise ValueError(f"unknown session folder kind {prefix!r}")
    return Path(tempfile.mkdtemp(prefix=prefix))


def remove_workdir(workdir) -> None:
    """A session's uploaded model, exports or album files go when the session ends or replaces them."""
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)


def remove_stale_temp(now: float | None = None) -> int:
    """Session folders left by a previous run (a crash, a restart): removed at startup."""
    now = now or time.time()
    removed = 0
    for path in Path(tempfile.gettempdir()).iterdir():
        if path.name.startswith(TEMP_PREFIXES) and path.is_dir() and now - path.stat().st_mtime > STALE_AFTER_S:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed
