"""Object detection (COCO): YOLOX-nano and NanoDet-m, decoded as their cards declare, class-aware NMS.

Besides the boxes, every result carries the photo's object features as the seed's algorithm uses them:
the highest confidence of each class anywhere in the photo (before any threshold).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from models.catalog import InputContract, class_names
from models.decoders import NanoDetDecoder, YoloxDecoder
from models.hub import LoadedModel
from pipelines.common.ops import nms, softmax
from pipelines.common.preprocess import letterbox, to_tensor
from pipelines.common.timing import StageTimings, Stopwatch

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


def _grid(contract: InputContract, stride: int) -> np.ndarray:
    """Cell corners (x, y) of one stride's feature map, row by row."""
    rows, cols = contract.height // stride, contract.width // stride
    ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)


def _cells(contract: InputContract, strides) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Every stride's cell corners, stride after stride; each cell's stride (a column); each stride's cell count."""
    grids = [_grid(contract, s) for s in strides]
    stride = np.concatenate([np.full((len(g), 1), s, np.float64) for g, s in zip(grids, strides)])
    return np.concatenate(grids), stride, [len(g) for g in grids]


class YoloxHead:
    """[anchors, 4 + 1 + classes]: centre offsets and log sizes per grid cell; score = objectness x class."""

    def __init__(self, config: YoloxDecoder, contract: InputContract, classes: int):
        self.grid, self.stride, _ = _cells(contract, config.strides)

    def __call__(self, outputs: list[np.ndarray]) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
        raw = outputs[0][0].astype(np.float64)

        def boxes(rows: np.ndarray) -> np.ndarray:
            centre = (raw[rows, 0:2] + self.grid[rows]) * self.stride[rows]
            half = np.exp(raw[rows, 2:4]) * self.stride[rows] / 2
            return np.concatenate([centre - half, centre + half], axis=1)

        return raw[:, 4:5] * raw[:, 5:], boxes


class NanoDetHead:
    """Per stride: class scores (sigmoid) and four distance distributions (softmax expectation x stride).
    Outputs are matched by shape: the file's output names are mislabelled."""

    def __init__(self, config: NanoDetDecoder, contract: InputContract, classes: int):
        self.bins = config.reg_max + 1
        self.classes = classes
        corners, self.stride, self.level_cells = _cells(contract, config.strides)
        self.centre = corners * self.stride + 0.5 * (self.stride - 1)

    def __call__(self, outputs: list[np.ndarray]) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
        by_rows: dict[int, dict[int, np.ndarray]] = {}
        for o in outputs:
            o = o.reshape(-1, o.shape[-1])
            by_rows.setdefault(o.shape[0], {})[o.shape[1]] = o
        levels = [by_rows[cells] for cells in self.level_cells]
        scores = np.concatenate([level[self.classes] for level in levels]).astype(np.float64)
        distributions = np.concatenate([level[4 * self.bins] for level in levels])

        def boxes(rows: np.ndarray) -> np.ndarray:
            weights = softmax(distributions[rows].astype(np.float64).reshape(-1, 4, self.bins), axis=2)
            distance = (weights * np.arange(self.bins)).sum(2) * self.stride[rows]  # left, top, right, bottom
            centre = self.centre[rows]
            return np.concatenate([centre - distance[:, :2], centre + distance[:, 2:]], axis=1)

        return scores, boxes


# decoder config -> the code that decodes it; a new detector kind is one config class and one head here
HEADS = {YoloxDecoder: YoloxHead, NanoDetDecoder: NanoDetHead}


class ObjectDetector:
    """One instance may serve many requests at once."""

    def __init__(self, model: LoadedModel):
        self.model = model
        self.card = model.card
        self.labels = class_names(model.card)
        head = HEADS.get(type(self.card.decoder))
        if head is None:
            raise ValueError(f"{self.card.name}: no object decoder for {self.card.decoder!r}")
        self.head = head(self.card.decoder, self.card.input, len(self.labels))

    def __call__(self, image: Image.Image, score_threshold: float = SCORE_THRESHOLD,
                 iou_threshold: float = IOU_THRESHOLD, max_detections: int = MAX_DETECTIONS) -> ObjectDetections:
        watch = Stopwatch()
        canvas, placement = letterbox(image, self.card.input)
        tensor = to_tensor(canvas, self.card.input)
        watch.lap("preprocess")
        outputs = self.model.backend.run(tensor)
        watch.lap("inference")
        scores, boxes_of = self.head(outputs)
        class_confidence = scores.max(0)
        best = scores.argmax(1)
        best_score = scores[np.arange(len(scores)), best]
        keep = np.flatnonzero(best_score >= score_threshold)  # boxes decoded for these rows only
        boxes, best, best_score = boxes_of(keep), best[keep], best_score[keep]
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
