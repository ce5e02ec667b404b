"""Image classification and scene recognition with the preprocessing each card declares.

Outputs are turned into probabilities over the model's real classes: softmax only where the card says
the model gives logits, and ImageNet's extra 'background' class (index 0 of 1001) dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from models.catalog import class_names, read_labels
from models.hub import LoadedModel
from pipelines.common.ops import softmax
from pipelines.common.preprocess import to_input_tensor
from pipelines.common.timing import StageTimings, Stopwatch


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float  # probability, 0..1
    index: int  # into the model's real classes


@dataclass(frozen=True)
class Classification:
    card: str
    top: tuple[Prediction, ...]
    probabilities: np.ndarray = field(repr=False, compare=False)
    timings: StageTimings


@dataclass(frozen=True)
class SceneResult:
    card: str
    top: tuple[Prediction, ...]
    environment: str  # "indoor" or "outdoor"
    indoor_share: float  # share of indoor labels among the top 10 scenes
    probabilities: np.ndarray = field(repr=False, compare=False)
    timings: StageTimings


class Classifier:
    """Top-k labels of an image classifier; one instance may serve many requests at once."""

    def __init__(self, model: LoadedModel, labels: tuple[str, ...] | None = None):
        self.card = model.card
        self.backend = model.backend
        self.labels = labels if labels is not None else class_names(model.card)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return to_input_tensor(image, self.card.input)

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        return self.backend.run(tensor)[0]

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        scores = raw.reshape(-1).astype(np.float64)
        if self.card.output.background_class:
            scores = scores[1:]
        return softmax(scores) if self.card.output.kind == "logits" else scores

    def top_k(self, probabilities: np.ndarray, k: int) -> tuple[Prediction, ...]:
        order = np.argsort(-probabilities, kind="stable")[:k]
        return tuple(Prediction(self.labels[i], float(probabilities[i]), int(i)) for i in order)

    def run(self, image: Image.Image) -> tuple[np.ndarray, Stopwatch]:
        watch = Stopwatch()
        tensor = self.preprocess(image)
        watch.lap("preprocess")
        raw = self.infer(tensor)
        watch.lap("inference")
        probabilities = self.probabilities(raw)
        return probabilities, watch

    def __call__(self, image: Image.Image, k: int = 5) -> Classification:
        probabilities, watch = self.run(image)
        top = self.top_k(probabilities, k)
        watch.lap("postprocess")
        return Classification(self.card.name, top, probabilities, watch.timings())


class SceneRecognizer(Classifier):
    """A Places365 classifier plus indoor/outdoor, as the Places365 demo decides it: the majority of the
    top-10 scene labels."""

    def __init__(self, model: LoadedModel):
        super().__init__(model)
        if not model.card.io_labels:
            raise ValueError(f"{model.card.name} has no indoor/outdoor labels")
        # IO_places365.txt: 'path 1' indoor, 'path 2' outdoor, in output order
        self.indoor = np.array([line.rsplit(" ", 1)[1] == "1" for line in read_labels(model.card.io_labels)])

    def __call__(self, image: Image.Image, k: int = 5) -> SceneResult:
        probabilities, watch = self.run(image)
        top = self.top_k(probabilities, k)
        top10 = np.argsort(-probabilities, kind="stable")[:10]
        indoor_share = float(self.indoor[top10].mean())
        watch.lap("postprocess")
        return SceneResult(
            self.card.name, top, "indoor" if indoor_share > 0.5 else "outdoor", indoor_share,
            probabilities, watch.timings(),
        )
