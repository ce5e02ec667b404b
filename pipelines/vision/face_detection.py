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

from models.catalog import InputContract
from models.decoders import BlazeFaceDecoder, RetinaFaceDecoder
from models.hub import LoadedModel, ModelHub
from pipelines.common.ops import nms, sigmoid, softmax
from pipelines.common.preprocess import letterbox, to_tensor
from pipelines.common.timing import Stopwatch

PYRAMID_FACTOR = 0.709
# A pyramid level at least 6x smaller than the photo is box-reduced by a whole factor before its bilinear pass
# (Pillow's reducing_gap): a bilinear pass alone reads every photo pixel at every level. The album's faces (min
# face 96: six levels, each 8x or more smaller) take 0.70-0.74x the time; the group photos' faces stay within IoU
# 0.96 of the textbook cascade's (a gap of 2 moved one to 0.86), all annotated faces found, none invented.
PYRAMID_REDUCING_GAP = 3.0
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
    def _crops(image: Image.Image, boxes: np.ndarray, size: int) -> np.ndarray:
        """Square crops of the boxes (inclusive pixel ends), black outside the photo (Pillow's crop pads so),
        resized to size x size, pasted one under the other into one image and read out of Pillow once (once
        per crop cost about 1 ms a group photo)."""
        strip = Image.new(image.mode, (size, size * max(1, len(boxes))))
        for i, (x1, y1, x2, y2) in enumerate(boxes[:, :4].astype(int).tolist()):
            if x2 >= x1 and y2 >= y1:
                crop = image.crop((x1, y1, x2 + 1, y2 + 1))
                strip.paste(crop.resize((size, size), Image.Resampling.BILINEAR), (0, i * size))
        return np.asarray(strip)[: size * len(boxes)].reshape(len(boxes), size, size, -1)

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
            level = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=PYRAMID_REDUCING_GAP)
            tensor = to_tensor(np.asarray(level), self.pnet.card.input)
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

    def _stage2(self, image: Image.Image, boxes: np.ndarray, options: DetectorOptions) -> np.ndarray:
        if not len(boxes):
            return boxes
        out = self._run(self.rnet, self._crops(image, boxes, 24))
        score = out[2][:, 1]
        keep = score > options.thresholds[1]
        boxes, score, reg = boxes[keep], score[keep], out[4][keep]
        picked = nms(boxes[:, :4], score, 0.7)
        calibrated = self._calibrate(boxes[picked, :4], reg[picked])
        return np.column_stack([np.fix(self._square(calibrated)), score[picked]])

    def _stage3(self, image: Image.Image, boxes: np.ndarray, options: DetectorOptions) -> tuple[np.ndarray, np.ndarray]:
        if not len(boxes):
            return boxes, np.zeros((0, 5, 2))
        out = self._run(self.onet, self._crops(image, boxes, 48))
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
        watch.lap("preprocess")
        boxes = self._stage1(small, options)
        watch.lap("pnet")
        boxes = self._stage2(small, boxes, options)
        watch.lap("rnet")
        boxes, landmarks = self._stage3(small, boxes, options)
        watch.lap("onet")
        faces = [_scaled_face(b, b[4], lm, scale) for b, lm in zip(boxes, landmarks)]
        kept, skipped = _keep_largest(faces, options, scale)
        watch.lap("postprocess")
        return FaceDetections(self.display, kept, skipped, scale, MappingProxyType(dict(watch.ms)))


class BlazeFaceHead:
    """SSD anchors; 6 keypoints (eyes, nose tip, mouth centre, ears) of which the eyes and the nose map to the
    5-point order: BlazeFace has no mouth corners."""

    present = (True, True, True, False, False)

    def __init__(self, config: BlazeFaceDecoder, contract: InputContract):
        self.config, self.size = config, contract.width
        anchors = []
        for cells, per_cell in config.grids:
            for y in range(cells):
                for x in range(cells):
                    anchors += [((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell
        self.anchors = np.array(anchors, np.float64)

    def __call__(self, outputs: list[np.ndarray]):
        by = {o.shape[-1]: o[0] for o in outputs}
        raw, logits = by[16], by[1][:, 0]
        centre = raw[:, 0:2] / self.config.scale + self.anchors
        half = raw[:, 2:4] / self.config.scale / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1) * self.size
        keypoints = (raw[:, 4:16].reshape(-1, 6, 2) / self.config.scale + self.anchors[:, None, :]) * self.size
        landmarks = np.full((len(raw), 5, 2), np.nan)
        landmarks[:, :3] = keypoints[:, :3]  # the person's right eye (image left), left eye, nose tip
        return boxes, sigmoid(logits), landmarks


class RetinaFaceHead:
    """Priors per feature map, offsets scaled by the training code's variances; five landmarks."""

    present = ALL_LANDMARKS

    def __init__(self, config: RetinaFaceDecoder, contract: InputContract):
        self.config = config
        self.size = np.array([contract.width, contract.height], np.float64)
        priors = []
        for sizes, step in zip(config.min_sizes, config.steps):
            for i in range(math.ceil(contract.height / step)):
                for j in range(math.ceil(contract.width / step)):
                    for s in sizes:
                        priors.append(((j + 0.5) * step / contract.width, (i + 0.5) * step / contract.height,
                                       s / contract.width, s / contract.height))
        self.priors = np.array(priors, np.float64)

    def __call__(self, outputs: list[np.ndarray]):
        by = {o.shape[-1]: o[0] for o in outputs}
        loc, conf, landms = by[4], by[2], by[10]
        if not np.allclose(conf.sum(1), 1.0, atol=1e-3):  # some exports end in logits
            conf = softmax(conf, axis=1)
        v0, v1 = self.config.variances
        priors = self.priors
        centre = priors[:, :2] + loc[:, :2] * v0 * priors[:, 2:]
        wh = priors[:, 2:] * np.exp(loc[:, 2:] * v1)
        boxes = np.concatenate([centre - wh / 2, centre + wh / 2], axis=1) * np.tile(self.size, 2)
        landmarks = (priors[:, None, :2] + landms.reshape(-1, 5, 2) * v0 * priors[:, None, 2:]) * self.size
        return boxes, conf[:, 1], landmarks


# decoder config -> the code that decodes it; a new single-shot detector is one config class and one head
HEADS = {BlazeFaceDecoder: BlazeFaceHead, RetinaFaceDecoder: RetinaFaceHead}


class SingleShotDetector:
    """BlazeFace (SSD anchors) and RetinaFace (priors): one network on the letterboxed photo."""

    def __init__(self, model: LoadedModel):
        self.model = model
        self.card = model.card
        head = HEADS.get(type(self.card.decoder))
        if head is None:
            raise ValueError(f"{self.card.name}: no face decoder for {self.card.decoder!r}")
        self.head = head(self.card.decoder, self.card.input)

    def __call__(self, image: Image.Image, options: DetectorOptions = DetectorOptions()) -> FaceDetections:
        watch = Stopwatch()
        small, scale = _downscaled(image, options)
        canvas, box = letterbox(small, self.card.input)
        tensor = to_tensor(canvas, self.card.input)
        watch.lap("preprocess")
        outputs = self.model.backend.run(tensor)
        watch.lap("inference")
        config = self.card.decoder
        threshold = options.score_threshold if options.score_threshold is not None else config.score_threshold
        boxes, scores, landmarks = self.head(outputs)
        keep = scores >= threshold
        boxes, scores, landmarks = boxes[keep], scores[keep], landmarks[keep]
        faces = []
        for i in nms(boxes, scores, config.nms_iou):
            corners = box.to_photo(boxes[i].reshape(2, 2)).reshape(4)
            faces.append(_scaled_face(corners, scores[i], box.to_photo(landmarks[i]), scale, self.head.present))
        kept, skipped = _keep_largest(faces, options, scale)
        watch.lap("postprocess")
        return FaceDetections(self.card.display, kept, skipped, scale, MappingProxyType(dict(watch.ms)))


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
        return MTCNN(*(hub.load(stages[s], threads) for s in ("pnet", "rnet", "onet")), display)
    return SingleShotDetector(hub.load(cards[0], threads))
