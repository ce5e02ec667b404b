"""Face detection: MTCNN (P-Net, R-Net, O-Net), BlazeFace and RetinaFace, one typed result for all.

Every detector returns boxes and five landmarks in photo pixels, in the order of the ArcFace template:
the eye on the image's left, the eye on the image's right, the nose, the mouth corner on the image's left,
the mouth corner on the image's right. BlazeFace has no mouth corners (it gives the mouth centre and the
ears): those two landmarks are NaN and `landmarks_present` says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import numpy as np
from PIL import Image

from models.catalog import ModelCard
from models.hub import LoadedModel, ModelHub
from pipelines.classification import load_model
from pipelines.preprocess import letterbox, to_tensor
from pipelines.timing import Stopwatch

PYRAMID_FACTOR = 0.709
ALL_LANDMARKS = (True,) * 5


@dataclass(frozen=True)
class DetectorOptions:
    """The reference app's defaults (MTCNN thresholds, min face 96 px on a photo downscaled to 600 px)."""

    min_face: int = 96  # pixels (the box's longer side), on the downscaled photo
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)  # MTCNN stages
    max_shorter_side: int = 600  # the photo is downscaled first so its shorter side is at most this
    max_faces: int = 50  # the largest are kept
    score_threshold: float | None = None  # BlazeFace / RetinaFace; None: the card's


@dataclass(frozen=True)
class Face:
    """One face in photo pixels."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    score: float
    landmarks: np.ndarray = field(compare=False)  # (5, 2); NaN where the detector has no such point
    landmarks_present: tuple[bool, ...] = ALL_LANDMARKS

    @property
    def size(self) -> float:
        """The box's longer side: what 'minimum face size' is compared with."""
        x1, y1, x2, y2 = self.box
        return max(x2 - x1, y2 - y1)


@dataclass(frozen=True)
class FaceDetections:
    detector: str
    faces: tuple[Face, ...]  # largest first
    skipped: int  # faces found beyond max_faces
    downscale: float  # photo pixels * downscale = the pixels the detector saw
    stage_ms: Mapping[str, float] = field(default_factory=dict, compare=False)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, mode: str = "union") -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first. 'min': overlap over the smaller box."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[order[1:]]) - np.maximum(x1[i], x1[order[1:]]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[order[1:]]) - np.maximum(y1[i], y1[order[1:]]) + 1)
        inter = w * h
        denominator = np.minimum(area[i], area[order[1:]]) if mode == "min" else area[i] + area[order[1:]] - inter
        order = order[1:][inter / denominator <= iou]
    return np.array(keep, np.int64)


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _by_channels(outputs: list[np.ndarray]) -> dict[int, np.ndarray]:
    """Outputs keyed by their last dimension (2: scores, 4: box regression, 10: landmarks); names vary."""
    return {int(o.shape[-1]): o for o in outputs}


def _downscaled(image: Image.Image, options: DetectorOptions) -> tuple[Image.Image, float]:
    scale = min(1.0, options.max_shorter_side / min(image.size))
    if scale < 1.0:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.Resampling.BILINEAR)
    return image, scale


def _keep_largest(faces: list[Face], options: DetectorOptions, scale: float) -> tuple[tuple[Face, ...], int]:
    """Faces at least min_face (on the downscaled photo), the largest max_faces of them, and how many more."""
    faces = [f for f in faces if f.size * scale >= options.min_face]
    faces = sorted(faces, key=lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    return tuple(faces[: options.max_faces]), max(0, len(faces) - options.max_faces)


def _scaled_face(box: np.ndarray, score: float, landmarks: np.ndarray, scale: float,
                 present: tuple[bool, ...] = ALL_LANDMARKS) -> Face:
    return Face(tuple(float(v) / scale for v in box[:4]), float(score), landmarks / scale, present)


class MTCNN:
    """The cascade of Zhang et al. (2016) as the Keras/Caffe ports run it: an image pyramid through P-Net,
    then R-Net on 24x24 crops and O-Net on 48x48 crops, with NMS and box calibration after each stage.
    Inputs are transposed (width and height swapped), as the networks were trained."""

    def __init__(self, pnet: LoadedModel, rnet: LoadedModel, onet: LoadedModel, display: str):
        self.pnet, self.rnet, self.onet = pnet, rnet, onet
        self.display = display

    @staticmethod
    def scales(width: int, height: int, min_face: int) -> list[float]:
        m = 12.0 / min_face
        side = min(width, height) * m
        scales = []
        while side >= 12:
            scales.append(m * PYRAMID_FACTOR ** len(scales))
            side *= PYRAMID_FACTOR
        return scales

    def _run(self, model: LoadedModel, crops: np.ndarray) -> dict[int, np.ndarray]:
        """A batch of crops through R-Net or O-Net; one at a time where the file has a fixed batch of 1."""
        tensor = to_tensor(crops, model.card.input)
        batch = model.backend.inputs[0].shape[0]
        if isinstance(batch, int) and batch == 1 and len(tensor) > 1:
            parts = [model.backend.run(tensor[i:i + 1]) for i in range(len(tensor))]
            return _by_channels([np.concatenate(group) for group in zip(*parts)])
        return _by_channels(model.backend.run(tensor))

    @staticmethod
    def _crops(pixels: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
        """Square crops of the boxes, zero outside the photo, resized to size x size."""
        height, width = pixels.shape[:2]
        out = np.zeros((len(boxes), size, size, 3), np.uint8)
        for i, (x1, y1, x2, y2) in enumerate(boxes[:, :4].astype(int)):
            w, h = x2 - x1 + 1, y2 - y1 + 1
            if w < 1 or h < 1:
                continue
            patch = np.zeros((h, w, 3), np.uint8)
            sx1, sy1, sx2, sy2 = max(0, x1), max(0, y1), min(width, x2 + 1), min(height, y2 + 1)
            if sx2 > sx1 and sy2 > sy1:
                patch[sy1 - y1:sy2 - y1, sx1 - x1:sx2 - x1] = pixels[sy1:sy2, sx1:sx2]
            out[i] = np.asarray(Image.fromarray(patch).resize((size, size), Image.Resampling.BILINEAR))
        return out

    @staticmethod
    def _calibrate(boxes: np.ndarray, regression: np.ndarray) -> np.ndarray:
        w = boxes[:, 2] - boxes[:, 0] + 1
        h = boxes[:, 3] - boxes[:, 1] + 1
        out = boxes.copy()
        out[:, 0] += regression[:, 0] * w
        out[:, 1] += regression[:, 1] * h
        out[:, 2] += regression[:, 2] * w
        out[:, 3] += regression[:, 3] * h
        return out

    @staticmethod
    def _square(boxes: np.ndarray) -> np.ndarray:
        w = boxes[:, 2] - boxes[:, 0]
        h = boxes[:, 3] - boxes[:, 1]
        side = np.maximum(w, h)
        out = boxes.copy()
        out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
        out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
        out[:, 2] = out[:, 0] + side
        out[:, 3] = out[:, 1] + side
        return out

    def _stage1(self, image: Image.Image, options: DetectorOptions) -> np.ndarray:
        found = []
        for scale in self.scales(image.width, image.height, options.min_face):
            size = (math.ceil(image.width * scale), math.ceil(image.height * scale))
            tensor = to_tensor(np.asarray(image.resize(size, Image.Resampling.BILINEAR)), self.pnet.card.input)
            out = _by_channels(self.pnet.backend.run(tensor))
            prob = out[2][0].transpose(1, 0, 2)[:, :, 1]  # back from the transposed frame: [rows, cols]
            reg = out[4][0].transpose(1, 0, 2)
            rows, cols = np.where(prob >= options.thresholds[0])
            if not len(rows):
                continue
            boxes = np.column_stack([
                np.fix((2 * cols + 1) / scale), np.fix((2 * rows + 1) / scale),
                np.fix((2 * cols + 12) / scale), np.fix((2 * rows + 12) / scale),
                prob[rows, cols], reg[rows, cols],
            ])
            found.append(boxes[nms(boxes[:, :4], boxes[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 9))
        boxes = np.concatenate(found)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        calibrated = self._calibrate(boxes[:, :4], boxes[:, 5:9])
        return np.column_stack([np.fix(self._square(calibrated)), boxes[:, 4]])

    def _stage2(self, pixels: np.ndarray, boxes: np.ndarray, options: DetectorOptions) -> np.ndarray:
        if not len(boxes):
            return boxes
        out = self._run(self.rnet, self._crops(pixels, boxes, 24))
        score = out[2][:, 1]
        keep = score > options.thresholds[1]
        boxes, score, reg = boxes[keep], score[keep], out[4][keep]
        picked = nms(boxes[:, :4], score, 0.7)
        calibrated = self._calibrate(boxes[picked, :4], reg[picked])
        return np.column_stack([np.fix(self._square(calibrated)), score[picked]])

    def _stage3(self, pixels: np.ndarray, boxes: np.ndarray, options: DetectorOptions) -> tuple[np.ndarray, np.ndarray]:
        if not len(boxes):
            return boxes, np.zeros((0, 5, 2))
        out = self._run(self.onet, self._crops(pixels, boxes, 48))
        score = out[2][:, 1]
        keep = score > options.thresholds[2]
        boxes, score, reg, marks = boxes[keep], score[keep], out[4][keep], out[10][keep]
        w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        landmarks = np.stack([boxes[:, 0:1] + w * marks[:, 0:5] - 1, boxes[:, 1:2] + h * marks[:, 5:10] - 1], axis=2)
        calibrated = self._calibrate(boxes[:, :4], reg)
        picked = nms(calibrated, score, 0.7, mode="min")
        return np.column_stack([calibrated[picked], score[picked]]), landmarks[picked]

    def __call__(self, image: Image.Image, options: DetectorOptions = DetectorOptions()) -> FaceDetections:
        watch = Stopwatch()
        small, scale = _downscaled(image, options)
        pixels = np.asarray(small)
        watch.lap("preprocess")
        boxes = self._stage1(small, options)
        watch.lap("pnet")
        boxes = self._stage2(pixels, boxes, options)
        watch.lap("rnet")
        boxes, landmarks = self._stage3(pixels, boxes, options)
        watch.lap("onet")
        faces = [_scaled_face(b, b[4], lm, scale) for b, lm in zip(boxes, landmarks)]
        kept, skipped = _keep_largest(faces, options, scale)
        watch.lap("postprocess")
        return FaceDetections(self.display, kept, skipped, scale, MappingProxyType(dict(watch.ms)))


class SingleShotDetector:
    """BlazeFace (SSD anchors) and RetinaFace (priors): one network on the letterboxed photo."""

    def __init__(self, model: LoadedModel):
        self.model = model
        self.card = model.card
        self.decoder = model.card.decoder
        kind = self.decoder.get("kind")
        if kind not in ("blazeface", "retinaface"):
            raise ValueError(f"{self.card.name}: no decoder {kind!r}")
        self.priors = _blazeface_anchors(self.decoder) if kind == "blazeface" else _retinaface_priors(self.card)

    def __call__(self, image: Image.Image, options: DetectorOptions = DetectorOptions()) -> FaceDetections:
        watch = Stopwatch()
        small, scale = _downscaled(image, options)
        canvas, box = letterbox(small, self.card.input)
        tensor = to_tensor(canvas, self.card.input)
        watch.lap("preprocess")
        outputs = self.model.backend.run(tensor)
        watch.lap("inference")
        threshold = options.score_threshold if options.score_threshold is not None else self.decoder["score_threshold"]
        if self.decoder["kind"] == "blazeface":
            boxes, scores, landmarks, present = self._blazeface(outputs)
        else:
            boxes, scores, landmarks, present = self._retinaface(outputs)
        keep = scores >= threshold
        boxes, scores, landmarks = boxes[keep], scores[keep], landmarks[keep]
        picked = nms(boxes, scores, self.decoder["nms_iou"])
        faces = []
        for i in picked:
            corners = box.to_photo(boxes[i].reshape(2, 2)).reshape(4)
            marks = box.to_photo(landmarks[i])
            faces.append(_scaled_face(corners, scores[i], marks, scale, present))
        kept, skipped = _keep_largest(faces, options, scale)
        watch.lap("postprocess")
        return FaceDetections(self.card.display, kept, skipped, scale, MappingProxyType(dict(watch.ms)))

    def _blazeface(self, outputs):
        size = self.card.input.width
        by = {o.shape[-1]: o[0] for o in outputs}
        raw, logits = by[16], by[1][:, 0]
        scale = self.decoder["scale"]
        anchors = self.priors
        centre = raw[:, 0:2] / scale + anchors
        half = raw[:, 2:4] / scale / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1) * size
        keypoints = (raw[:, 4:16].reshape(-1, 6, 2) / scale + anchors[:, None, :]) * size
        landmarks = np.full((len(raw), 5, 2), np.nan)
        landmarks[:, 0] = keypoints[:, 0]  # the person's right eye: on the image's left
        landmarks[:, 1] = keypoints[:, 1]
        landmarks[:, 2] = keypoints[:, 2]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -100, 100)))
        return boxes, scores, landmarks, (True, True, True, False, False)

    def _retinaface(self, outputs):
        size = np.array([self.card.input.width, self.card.input.height], np.float64)
        by = {o.shape[-1]: o[0] for o in outputs}
        loc, conf, landms = by[4], by[2], by[10]
        if not np.allclose(conf.sum(1), 1.0, atol=1e-3):
            conf = np.exp(conf - conf.max(1, keepdims=True))
            conf = conf / conf.sum(1, keepdims=True)
        v0, v1 = self.decoder["variances"]
        priors = self.priors
        centre = priors[:, :2] + loc[:, :2] * v0 * priors[:, 2:]
        wh = priors[:, 2:] * np.exp(loc[:, 2:] * v1)
        boxes = np.concatenate([centre - wh / 2, centre + wh / 2], axis=1) * np.tile(size, 2)
        landmarks = (priors[:, None, :2] + landms.reshape(-1, 5, 2) * v0 * priors[:, None, 2:]) * size
        return boxes, conf[:, 1], landmarks, ALL_LANDMARKS


def _blazeface_anchors(decoder: Mapping) -> np.ndarray:
    anchors = []
    for cells, per_cell in decoder["grids"]:
        for y in range(cells):
            for x in range(cells):
                anchors += [((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell
    return np.array(anchors, np.float64)


def _retinaface_priors(card: ModelCard) -> np.ndarray:
    width, height = card.input.width, card.input.height
    priors = []
    for sizes, step in zip(card.decoder["min_sizes"], card.decoder["steps"]):
        for i in range(math.ceil(height / step)):
            for j in range(math.ceil(width / step)):
                for s in sizes:
                    priors.append(((j + 0.5) * step / width, (i + 0.5) * step / height, s / width, s / height))
    return np.array(priors, np.float64)


def load_detector(hub: ModelHub, display: str, threads: int = 1):
    """The detector of a display name: MTCNN when its cards are stages, else a single-shot detector."""
    cards = [c for c in hub.store.catalog.for_task("face_detection") if c.display == display]
    if not cards:
        known = ", ".join(hub.store.catalog.displays("face_detection"))
        raise ValueError(f"no face detector named {display!r}; known: {known}")
    stages = {c.stage: c for c in cards if c.stage}
    if stages:
        if set(stages) != {"pnet", "rnet", "onet"}:
            raise ValueError(f"{display}: MTCNN needs pnet, rnet and onet cards, found {sorted(stages)}")
        return MTCNN(*(load_model(hub, stages[s], threads) for s in ("pnet", "rnet", "onet")), display)
    return SingleShotDetector(load_model(hub, cards[0], threads))
