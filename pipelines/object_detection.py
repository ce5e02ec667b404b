"""Object detection (COCO): YOLOX-nano and NanoDet-m, decoded as their cards declare, class-aware NMS.

Besides the boxes, every result carries the photo's object features as the seed's algorithm uses them:
the highest confidence of each class anywhere in the photo (before any threshold).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from models.catalog import class_names
from models.hub import LoadedModel
from pipelines.face_detection import nms
from pipelines.preprocess import letterbox, to_tensor
from pipelines.timing import StageTimings, Stopwatch

SCORE_THRESHOLD = 0.3  # the reference system's
IOU_THRESHOLD = 0.45
MAX_DETECTIONS = 100


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in photo pixels
    score: float
    class_index: int
    label: str


@dataclass(frozen=True)
class ObjectDetections:
    card: str
    detections: tuple[Detection, ...]  # best first
    class_confidence: np.ndarray = field(compare=False)  # [classes]: the highest score of each class
    timings: StageTimings = field(compare=False, default=StageTimings(0, 0, 0))


class ObjectDetector:
    """One instance may serve many requests at once."""

    def __init__(self, model: LoadedModel):
        self.model = model
        self.card = model.card
        self.labels = class_names(model.card)
        kind = self.card.decoder.get("kind")
        if kind not in ("yolox", "nanodet"):
            raise ValueError(f"{self.card.name}: no object decoder {kind!r}")
        self.kind = kind
        self.points = {stride: self._grid(stride) for stride in self.card.decoder["strides"]}

    def _grid(self, stride: int) -> np.ndarray:
        rows, cols = self.card.input.height // stride, self.card.input.width // stride
        ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)

    def _yolox(self, outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        raw = outputs[0][0].astype(np.float64)  # [anchors, 4 + 1 + classes]
        grids, strides = [], []
        for stride, points in self.points.items():
            grids.append(points)
            strides.append(np.full((len(points), 1), stride, np.float64))
        grid, stride = np.concatenate(grids), np.concatenate(strides)
        centre = (raw[:, 0:2] + grid) * stride
        half = np.exp(raw[:, 2:4]) * stride / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        return boxes, raw[:, 4:5] * raw[:, 5:]  # objectness x class, both already sigmoid

    def _nanodet(self, outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        bins = self.card.decoder["reg_max"] + 1
        by_rows: dict[int, dict[int, np.ndarray]] = {}
        for o in outputs:
            o = o.reshape(-1, o.shape[-1]).astype(np.float64)
            by_rows.setdefault(o.shape[0], {})[o.shape[1]] = o
        all_boxes, all_scores = [], []
        for stride, points in self.points.items():
            level = by_rows[len(points)]
            scores, distribution = level[len(self.labels)], level[4 * bins]
            logits = distribution.reshape(-1, 4, bins)
            weights = np.exp(logits - logits.max(2, keepdims=True))
            weights /= weights.sum(2, keepdims=True)
            distance = (weights * np.arange(bins)).sum(2) * stride  # left, top, right, bottom
            centre = points * stride + 0.5 * (stride - 1)
            all_boxes.append(np.concatenate([centre - distance[:, :2], centre + distance[:, 2:]], axis=1))
            all_scores.append(scores)
        return np.concatenate(all_boxes), np.concatenate(all_scores)

    def __call__(self, image: Image.Image, score_threshold: float = SCORE_THRESHOLD,
                 iou_threshold: float = IOU_THRESHOLD, max_detections: int = MAX_DETECTIONS) -> ObjectDetections:
        watch = Stopwatch()
        canvas, placement = letterbox(image, self.card.input)
        tensor = to_tensor(canvas, self.card.input)
        watch.lap("preprocess")
        outputs = self.model.backend.run(tensor)
        watch.lap("inference")
        boxes, scores = self._yolox(outputs) if self.kind == "yolox" else self._nanodet(outputs)
        class_confidence = scores.max(0)
        best = scores.argmax(1)
        best_score = scores[np.arange(len(scores)), best]
        keep = best_score >= score_threshold
        boxes, best, best_score = boxes[keep], best[keep], best_score[keep]
        # class-aware NMS: boxes of different classes never suppress each other
        offset = best[:, None] * (4.0 * max(self.card.input.width, self.card.input.height))
        picked = nms(boxes + offset, best_score, iou_threshold)[:max_detections]
        width, height = image.size
        detections = []
        for i in picked:
            corners = placement.to_photo(boxes[i].reshape(2, 2)).reshape(4)
            x1, y1, x2, y2 = np.clip(corners, 0, [width, height, width, height])
            detections.append(Detection((float(x1), float(y1), float(x2), float(y2)), float(best_score[i]),
                                        int(best[i]), self.labels[int(best[i])]))
        watch.lap("postprocess")
        return ObjectDetections(self.card.name, tuple(detections), class_confidence.astype(np.float32), watch.timings())
