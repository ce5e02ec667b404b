"""Shared math of the vision tasks: softmax, box overlap, non-maximum suppression, output agreement."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = logits - np.max(logits, axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, np.float64), -100, 100)))


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, mode: str = "union") -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first. 'min': overlap over the smaller box.

    Boxes are (x1, y1, x2, y2) with inclusive pixel ends (the +1 of the MTCNN lineage)."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    if len(boxes) <= 2048:
        return _nms_matrix(boxes, scores, iou, mode)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        denominator = np.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        order = rest[inter / denominator <= iou]
    return np.array(keep, np.int64)


def _nms_matrix(boxes: np.ndarray, scores: np.ndarray, iou: float, mode: str) -> np.ndarray:
    """The same greedy suppression from a matrix of overlaps computed at once (fewer numpy calls)."""
    order = np.argsort(-scores, kind="stable")
    b = boxes[order, :4].astype(np.float64)
    area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    w = np.maximum(0.0, np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0]) + 1)
    h = np.maximum(0.0, np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1]) + 1)
    inter = w * h
    denominator = np.minimum(area[:, None], area[None]) if mode == "min" else area[:, None] + area[None] - inter
    overlapping = inter / denominator > iou
    suppressed = np.zeros(len(b), bool)
    keep = []
    for i in range(len(b)):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= overlapping[i]
    return order[np.array(keep, np.int64)]


@dataclass(frozen=True)
class Agreement:
    """How far one model's outputs stay from a reference's on the same inputs."""

    same_top1: float  # share of inputs with the same top-1, 0..1
    mean_cosine: float  # mean cosine of the output vectors


def agreement(outputs: np.ndarray, reference: np.ndarray) -> Agreement:
    """[inputs, classes] outputs against the reference's; an all-zero row has cosine 0, never NaN."""
    outputs, reference = np.atleast_2d(outputs), np.atleast_2d(reference)
    norms = np.linalg.norm(outputs, axis=1) * np.linalg.norm(reference, axis=1)
    cosines = np.sum(outputs * reference, 1) / np.maximum(norms, 1e-12)
    return Agreement(float(np.mean(outputs.argmax(1) == reference.argmax(1))), float(np.mean(cosines)))
