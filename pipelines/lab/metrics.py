"""Accuracy of a classifier on labeled photos (top-1 / top-5) and of a detector on COCO boxes (mAP@0.5)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from pipelines.lab.datasets import LabeledPhoto


@dataclass(frozen=True)
class Accuracy:
    top1: float  # fraction, 0..1
    top5: float
    count: int
    predictions: tuple[int, ...]  # top-1 index per photo, in input order
    scores: np.ndarray | None = field(default=None, repr=False, compare=False)  # [photos, classes] if kept


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


def coco_map50(detect: Callable[[Image.Image], Sequence], folder: Path) -> float:
    """mAP at IoU 0.5 (pycocotools) of `detect(image)` -> detections with .box (x1, y1, x2, y2 pixels),
    .score and .class_index, on a folder whose labels.csv has one row per box (class_id80, x1..y2, img_w, img_h)."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with (folder / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    files = sorted({r["filename"] for r in rows})
    ids = {name: i + 1 for i, name in enumerate(files)}
    size = {r["filename"]: (int(r["img_w"]), int(r["img_h"])) for r in rows}

    def xywh(x1, y1, x2, y2):
        return [float(x1), float(y1), float(x2) - float(x1), float(y2) - float(y1)]

    truth = COCO()
    truth.dataset = {
        "images": [{"id": ids[f], "width": size[f][0], "height": size[f][1]} for f in files],
        "annotations": [
            {"id": k + 1, "image_id": ids[r["filename"]], "category_id": int(r["class_id80"]) + 1, "iscrowd": 0,
             "bbox": xywh(r["x1"], r["y1"], r["x2"], r["y2"]),
             "area": (float(r["x2"]) - float(r["x1"])) * (float(r["y2"]) - float(r["y1"]))}
            for k, r in enumerate(rows)
        ],
        "categories": [{"id": i + 1} for i in range(80)],
    }
    found = []
    for name in files:
        with Image.open(folder / "images" / name) as image:
            for d in detect(image.convert("RGB")):
                found.append({"image_id": ids[name], "category_id": d.class_index + 1, "bbox": xywh(*d.box),
                              "score": d.score})
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        truth.createIndex()
        if not found:
            return 0.0
        evaluation = COCOeval(truth, truth.loadRes(found), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(evaluation.stats[1])
