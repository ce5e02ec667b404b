"""detect -> align -> embed: the one path every face takes (Faces tab, Photo tab, albums, verification)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from models.hub import ModelHub
from pipelines.common.timing import StageLatency, stage_latencies
from pipelines.faces.errors import FaceError
from pipelines.faces.people import Person, group_people
from pipelines.faces.thresholds import read_thresholds
from pipelines.vision.face_detection import (
    DetectorOptions,
    FaceDetections,
    load_detector,
)
from pipelines.vision.face_embedding import Embedder, Embeddings, align_face

CROP_SIZE = 112


@dataclass(frozen=True)
class FaceAnalysis:
    detections: FaceDetections
    crops: np.ndarray = field(compare=False)  # [N, 112, 112, 3]: what the embedder sees
    embeddings: Embeddings
    threshold: float  # the embedder's match threshold (from labeled pairs)
    stage_ms: tuple[tuple[str, float], ...]  # detection stages, alignment, embedding


def match_threshold(card_name: str) -> float:
    thresholds = read_thresholds()
    if card_name not in thresholds:
        raise FaceError(f"{card_name} has no match threshold yet: run python -m pipelines.faces.verification")
    return thresholds[card_name].threshold


class FacePipeline:
    """A detector and (optionally) an embedder, loaded once and shared by concurrent requests."""

    def __init__(self, detector, embedder: Embedder | None = None, threshold: float | None = None):
        self.detector = detector
        self.embedder = embedder
        self.threshold = threshold

    @classmethod
    def load(cls, hub: ModelHub, detector: str, embedder: str | None, threads: int = 1) -> FacePipeline:
        """The detector by its display name, the embedder by its card (None: detection and alignment only)."""
        if embedder is None:
            return cls(load_detector(hub, detector, threads))
        card = hub.store.catalog[embedder]
        if card.task != "face_embedding":
            raise FaceError(f"{embedder} is not a face embedder")
        threshold = match_threshold(card.name)
        return cls(load_detector(hub, detector, threads), Embedder(hub.load(card, threads)), threshold)

    def detect_and_align(self, image: Image.Image, options: DetectorOptions) -> tuple[FaceDetections, np.ndarray, float]:
        """The faces, their crops aligned to the 5-point template, and the milliseconds alignment took."""
        detections = self.detector(image, options)
        start = time.perf_counter_ns()
        crops = np.stack([align_face(image, f, CROP_SIZE) for f in detections.faces]) if detections.faces else \
            np.zeros((0, CROP_SIZE, CROP_SIZE, 3), np.uint8)
        return detections, crops, (time.perf_counter_ns() - start) / 1e6

    def __call__(self, image: Image.Image, options: DetectorOptions = DetectorOptions()) -> FaceAnalysis:
        if self.embedder is None:
            raise FaceError("this face pipeline has no embedder")
        detections, crops, align_ms = self.detect_and_align(image, options)
        embeddings = self.embedder(crops)
        stages = tuple((f"detection: {k}", v) for k, v in detections.stage_ms.items()) + (
            ("alignment (all faces)", align_ms),
            ("embedding (per face)", embeddings.ms_per_face),
        )
        return FaceAnalysis(detections, crops, embeddings, self.threshold, stages)

    def latency(self, image: Image.Image, options: DetectorOptions = DetectorOptions(), runs: int = 10,
                warmup: int = 1, budget_ms: float | None = None) -> tuple[StageLatency, ...]:
        """Warm median and p90 of each stage on this photo, and of the whole call ("total": detection, alignment and
        every face's embedding); with a budget, fewer runs where the photo is slow (see stage_latencies)."""

        def once() -> list[tuple[str, float]]:
            start = time.perf_counter_ns()
            stages = self(image, options).stage_ms
            return [*stages, ("total", (time.perf_counter_ns() - start) / 1e6)]

        return stage_latencies(once, runs, warmup, budget_ms)


def group_analyses(analyses: Sequence[FaceAnalysis], threshold: float) -> list[Person]:
    """People across the photos of several analyses (all embedded by one network)."""
    spaces = {a.embeddings.space for a in analyses if len(a.embeddings.vectors)}
    if len(spaces) > 1:
        raise FaceError("the photos were embedded by different networks")
    return group_people([a.embeddings.vectors for a in analyses], [a.crops for a in analyses], threshold)


def person_embeddings(analyses: Sequence[FaceAnalysis], people: Sequence[Person]) -> Embeddings:
    """One embedding per person (their first face), to name them against a gallery."""
    if not people:
        return Embeddings("", "", np.zeros((0, 1), np.float32))
    first = analyses[people[0].faces[0][0]].embeddings
    vectors = np.stack([analyses[p].embeddings.vectors[f] for person in people for p, f in person.faces[:1]])
    return Embeddings(first.card, first.space, vectors)
