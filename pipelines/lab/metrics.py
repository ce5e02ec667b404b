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


@dataclass(frozen=True)
class Box:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 pixels
    class_index: int


def map50(truth: Sequence[Sequence[Box]], found: Sequence[Sequence]) -> float:
    """mAP at IoU 0.5 (pycocotools) of per-image detections (.box, .score, .class_index) against per-image
    true boxes."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(x1, y1, x2, y2):
        return [float(x1), float(y1), float(x2) - float(x1), float(y2) - float(y1)]

    reference = COCO()
    reference.dataset = {
        "images": [{"id": i + 1} for i in range(len(truth))],
        "annotations": [{"id": k + 1, "image_id": i + 1, "category_id": b.class_index + 1, "iscrowd": 0,
                         "bbox": xywh(*b.box), "area": (b.box[2] - b.box[0]) * (b.box[3] - b.box[1])}
                        for k, (i, b) in enumerate((i, b) for i, boxes in enumerate(truth) for b in boxes)],
        "categories": [{"id": i + 1} for i in range(80)],
    }
    results = [{"image_id": i + 1, "category_id": d.class_index + 1, "bbox": xywh(*d.box), "score": d.score}
               for i, detections in enumerate(found) for d in detections]
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        reference.createIndex()
        if not results:
            return 0.0
        evaluation = COCOeval(reference, reference.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(evaluation.stats[1])


def coco_map50(detect: Callable[[Image.Image], Sequence], folder: Path) -> float:
    """mAP at IoU 0.5 of `detect(image)` on a folder whose labels.csv has one row per box (class_id80, x1..y2)."""
    with (folder / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    files = sorted({r["filename"] for r in rows})
    truth = [[Box((float(r["x1"]), float(r["y1"]), float(r["x2"]), float(r["y2"])), int(r["class_id80"]))
              for r in rows if r["filename"] == name] for name in files]
    found = []
    for name in files:
        with Image.open(folder / "images" / name) as image:
            found.append(detect(image.convert("RGB")))
    return map50(truth, found)


@dataclass(frozen=True)
class FaceRecall:
    found: int  # annotated faces with a detection at IoU >= the bar
    faces: int
    false_positives: int  # detections matching no face, annotated or ignored

    @property
    def recall(self) -> float:
        return self.found / self.faces if self.faces else 0.0


def face_recall(detect: Callable[[Image.Image], Sequence], photos: Sequence, iou: float = 0.4) -> FaceRecall:
    """Faces found on annotated photos (datasets.FaceBoxes) by `detect(image)` -> faces with .box."""
    from pipelines.common.ops import box_iou

    found = total = false = 0
    for photo in photos:
        with Image.open(photo.path) as image:
            faces = detect(image.convert("RGB"))
        total += len(photo.faces)
        found += sum(any(box_iou(b, f.box) >= iou for f in faces) for b in photo.faces)
        false += sum(not any(box_iou(b, f.box) >= iou for b in photo.faces + photo.ignored) for f in faces)
    return FaceRecall(found, total, false)
