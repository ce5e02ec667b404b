"""Where the labeled photos are: MVL_EVAL_DIR, else MVL_SHARED_DIR/eval, else ../shared/eval beside the project.
They are for evaluation, calibration and benchmarks, and are never part of the project."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def eval_dir() -> Path:
    if os.environ.get("MVL_EVAL_DIR"):
        return Path(os.environ["MVL_EVAL_DIR"])
    shared = Path(os.environ.get("MVL_SHARED_DIR", ROOT.parent / "shared"))
    return shared / "eval"
