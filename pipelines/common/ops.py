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
    order = np.argsort(-scores, kind="stable")
    b = boxes[order, :4].astype(np.float64)
    pairs = _pairs_overlapping_in_x(b)
    if pairs is None:
        return _nms_greedy(b, order, iou, mode)
    first, second = pairs
    x1, y1, x2, y2 = b.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    w = np.maximum(0.0, np.minimum(x2[first], x2[second]) - np.maximum(x1[first], x1[second]) + 1)
    h = np.maximum(0.0, np.minimum(y2[first], y2[second]) - np.maximum(y1[first], y1[second]) + 1)
    inter = w * h
    a, c = area[first], area[second]
    denominator = np.minimum(a, c) if mode == "min" else a + c - inter
    over = inter / denominator > iou
    better, worse = np.minimum(first[over], second[over]), np.maximum(first[over], second[over])
    by_better = np.argsort(better, kind="stable")
    better, worse = better[by_better], worse[by_better]
    starts = np.flatnonzero(np.r_[True, better[1:] != better[:-1]]) if len(better) else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], len(better)]
    suppressed = np.zeros(len(b), bool)
    # greedy, best first; only a box that overlaps a lower-scored one can suppress anything
    for i, start, end in zip(better[starts].tolist(), starts.tolist(), ends.tolist()):
        if not suppressed[i]:
            suppressed[worse[start:end]] = True
    return order[~suppressed]


MAX_PAIRS = 2_000_000  # beyond this many candidate pairs (some 100 MB of work arrays), box by box instead


def _pairs_overlapping_in_x(b: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Every pair of boxes (indices into b, each pair once) whose inclusive x ranges can meet: only these can
    overlap, and on a photo they are a small part of all pairs (344 P-Net boxes of one pyramid level took
    3.4 ms as a full matrix of overlaps). None when there would be more than MAX_PAIRS."""
    by_x = np.argsort(b[:, 0], kind="stable")
    xs = b[by_x, 0]
    ends = np.searchsorted(xs, b[by_x, 2] + 1, side="right")  # boxes starting at most one pixel past the end
    counts = np.maximum(0, ends - np.arange(1, len(b) + 1))
    total = int(counts.sum())
    if total > MAX_PAIRS:
        return None
    p = np.repeat(np.arange(len(b)), counts)
    q = p + 1 + np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    return by_x[p], by_x[q]


def _nms_greedy(b: np.ndarray, order: np.ndarray, iou: float, mode: str) -> np.ndarray:
    """The same suppression box by box (boxes b already best first), in memory proportional to their number."""
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    remaining = np.arange(len(b))
    keep = []
    while remaining.size:
        i = remaining[0]
        keep.append(i)
        rest = remaining[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        denominator = np.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        remaining = rest[inter / denominator <= iou]
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
