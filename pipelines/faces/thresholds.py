"""Each embedder's match threshold, as `python -m pipelines.faces.verification` measured it on labeled pairs."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

THRESHOLDS_CSV = Path(__file__).resolve().parents[2] / "models" / "data" / "face_thresholds.csv"
FIELDS = ("card", "dataset", "pairs", "same_pairs", "threshold", "cv_accuracy", "same_mean", "different_mean",
          "undetected")


@dataclass(frozen=True)
class Verification:
    card: str
    dataset: str
    pairs: int
    same_pairs: int
    threshold: float
    cv_accuracy: float
    same_mean: float
    different_mean: float
    undetected: int


def read_thresholds(path: Path = THRESHOLDS_CSV) -> dict[str, Verification]:
    """The thresholds file, read once per version of it (every face request asks)."""
    if not path.is_file():
        return {}
    return dict(_read_thresholds(path, path.stat().st_mtime_ns))


@cache
def _read_thresholds(path: Path, mtime_ns: int) -> dict[str, Verification]:
    with path.open(newline="") as fh:
        return {
            r["card"]: Verification(r["card"], r["dataset"], int(r["pairs"]), int(r["same_pairs"]), float(r["threshold"]),
                                    float(r["cv_accuracy"]), float(r["same_mean"]), float(r["different_mean"]),
                                    int(r["undetected"]))
            for r in csv.DictReader(fh)
        }


def write_thresholds(results: list[Verification], path: Path = THRESHOLDS_CSV) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(FIELDS)
        for r in results:
            writer.writerow([getattr(r, f) for f in FIELDS])
