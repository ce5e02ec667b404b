import numpy as np
import pytest

from pipelines.common import ops


def _one_by_one(boxes, scores, iou, mode):
    """Greedy suppression as the textbook writes it: the best box, then drop what overlaps it, again."""
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order, keep = np.argsort(-scores, kind="stable"), []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        other = np.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        order = rest[inter / other <= iou]
    return keep


@pytest.mark.parametrize("max_pairs", [ops.MAX_PAIRS, 0])  # pairs overlapping in x; box by box
def test_nms_keeps_what_the_textbook_greedy_keeps(monkeypatch, max_pairs):
    monkeypatch.setattr(ops, "MAX_PAIRS", max_pairs)
    rng = np.random.default_rng(7)
    for trial in range(60):
        n = int(rng.integers(1, 300))
        corner = rng.uniform(0, 300, (n, 2))
        boxes = np.hstack([corner, corner + rng.uniform(3, 80, (n, 2))])
        boxes = np.fix(boxes) if trial % 2 else boxes  # integer boxes touch and tie
        scores = rng.uniform(size=n)
        scores = np.round(scores, 1) if trial % 3 == 0 else scores  # equal scores: the first stays first
        for iou in (0.3, 0.5, 0.7):
            for mode in ("union", "min"):
                assert ops.nms(boxes, scores, iou, mode).tolist() == _one_by_one(boxes, scores, iou, mode)


def test_boxes_side_by_side_one_pixel_apart_do_not_overlap_and_touching_ones_do():
    boxes = np.array([[0, 0, 9, 9], [10, 0, 19, 9], [9, 0, 18, 9]], float)  # inclusive ends
    assert ops.nms(boxes[:2], np.array([0.9, 0.8]), 0.0).tolist() == [0, 1]
    assert ops.nms(boxes[[0, 2]], np.array([0.9, 0.8]), 0.0).tolist() == [0]
