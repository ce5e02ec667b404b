"""Gradio writes a result image to its cache under a name made from the image's bytes, and rewrites the file
every time, in place: when two sessions get the same image at once (the same example photo, say), one is
served a file the other is truncating ("Too little data for declared Content-Length", a broken thumbnail).
Here the same function writes a new file under a temporary name and renames it into place, and leaves an
existing one (same name, same bytes) alone, as Gradio's own save_file_to_cache already does."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from gradio import processing_utils


def save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    target = (folder / f"{name}.{format}").resolve()
    if target.is_file() and target.stat().st_size == len(data):
        os.utime(target)  # its age decides when delete_cache removes it
        return str(target)
    fd, staging = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(staging, target)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return str(target)


def atomic_cache_writes() -> None:
    """Install the atomic writer (every call site reads it through the module)."""
    processing_utils.save_pil_to_cache = save_pil_to_cache
