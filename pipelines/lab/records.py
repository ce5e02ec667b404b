"""The lab's measurements of each card, as written by `python -m pipelines.lab.evaluate` and read by the
Models tab (models/data/evaluation.csv): one row per card."""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, fields
from pathlib import Path

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "models" / "data" / "evaluation.csv"


@dataclass(frozen=True)
class CardEvaluation:
    card: str
    task: str
    model: str
    variant: str
    runtime: str
    precision: str
    derived_from: str  # "" for original files
    license: str
    size_mb: float
    params: int
    macs: int
    macs_conv_1x1_pct: float
    params_conv_1x1_pct: float
    macs_depthwise_pct: float
    params_depthwise_pct: float
    macs_conv_full_pct: float
    params_conv_full_pct: float
    macs_fully_connected_pct: float
    params_fully_connected_pct: float
    eval_set: str
    photos: int  # photos, faces or pairs' photos the score is measured on
    metric: str  # what `score` is: "top-1 %", "mAP@0.5", "faces found %", "balanced pair accuracy %"
    score: float
    top5_pct: float | None  # classifiers only
    agreement_pct: float | None  # derived cards: same top-1 (classifiers) or same decisions (embedders) as the parent
    cosine: float | None  # derived cards: mean cosine of outputs (or embeddings) with the parent's
    false_positives: int | None  # face detectors: detections that match no face
    latency_1t_ms: float  # warm median
    latency_1t_p90_ms: float
    latency_2t_ms: float
    latency_2t_p90_ms: float
    latency_runs: int


def _from_row(row: dict[str, str]) -> CardEvaluation:
    values = {}
    for f in fields(CardEvaluation):
        raw = row[f.name]
        if f.type in ("int",):
            values[f.name] = int(raw)
        elif f.type.startswith("int |"):
            values[f.name] = int(raw) if raw else None
        elif f.type in ("float",):
            values[f.name] = float(raw)
        elif f.type.startswith("float |"):
            values[f.name] = float(raw) if raw else None
        else:
            values[f.name] = raw
    return CardEvaluation(**values)


def read_evaluations(path: Path = DEFAULT_CSV) -> dict[str, CardEvaluation]:
    """The cached rows; none from a file written with other columns (by an older version: evaluate again)."""
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if set(reader.fieldnames or ()) != {f.name for f in fields(CardEvaluation)}:
            return {}
        return {row["card"]: _from_row(row) for row in reader}


def write_evaluations(rows: list[CardEvaluation], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[f.name for f in fields(CardEvaluation)])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in asdict(row).items()})
