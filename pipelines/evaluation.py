"""Accuracy of a classifier on a folder of labeled photos (labels.csv + images/)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class LabeledPhoto:
    path: Path
    label: int  # index into the model's real classes


@dataclass(frozen=True)
class Accuracy:
    top1: float  # fraction, 0..1
    top5: float
    count: int
    predictions: tuple[int, ...]  # top-1 index per photo, in input order
    scores: np.ndarray | None = field(default=None, repr=False, compare=False)  # [photos, classes] if kept


def imagenet_photos(folder: Path) -> list[LabeledPhoto]:
    """ImageNet validation photos; class_index is the usual 1000-class order."""
    with (folder / "labels.csv").open(newline="") as fh:
        return [LabeledPhoto(folder / "images" / r["filename"], int(r["class_index"])) for r in csv.DictReader(fh)]


def places365_photos(folder: Path) -> list[LabeledPhoto]:
    """MiniPlaces photos with a Places365 twin class (rows without one are left out)."""
    with (folder / "labels.csv").open(newline="") as fh:
        return [
            LabeledPhoto(folder / "images" / r["filename"], int(r["places365_index"]))
            for r in csv.DictReader(fh) if r["places365_index"].strip()
        ]


def evaluate(
    probabilities: Callable[[Image.Image], np.ndarray],
    photos: Sequence[LabeledPhoto],
    keep_scores: bool = False,
    progress: Callable[[Iterable], Iterable] = iter,
) -> Accuracy:
    """Top-1 and top-5 of `probabilities(image)` against each photo's label."""
    if not photos:
        raise ValueError("no labeled photos to evaluate on")
    hits1 = hits5 = 0
    predictions, kept = [], []
    for photo in progress(photos):
        with Image.open(photo.path) as image:
            scores = probabilities(image.convert("RGB"))
        top5 = np.argsort(-scores, kind="stable")[:5]
        predictions.append(int(top5[0]))
        hits1 += int(top5[0] == photo.label)
        hits5 += int(photo.label in top5)
        if keep_scores:
            kept.append(np.asarray(scores, np.float32))
    return Accuracy(hits1 / len(photos), hits5 / len(photos), len(photos), tuple(predictions),
                    np.stack(kept) if keep_scores else None)
