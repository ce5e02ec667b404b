"""Accuracy of every card on the labeled photos in ../shared/eval, by the project's own evaluation function.

Each figure must stay within 1 point of what was measured (README table): the photos and the code are fixed, so
a move either way is a change of preprocessing, decoding or recipe; a wrong channel order, scaling or
background offset falls far below, and the declared crop beats no crop.
"""

import dataclasses
from functools import cache

import pytest

from models.catalog import default_catalog
from pipelines.lab.datasets import imagenet_photos, places365_photos
from pipelines.lab.metrics import evaluate
from pipelines.vision.classification import Classifier
from tests.helpers import EVAL

CATALOG = default_catalog()

# measured top-1 / top-5 in %, the README's model table
MEASURED = {
    "mobilenet_v1_0.25_128.uint8_qat_tflite": (54.1, 79.6),
    "mobilenet_v1_0.5_160.uint8_qat_tflite": (68.9, 90.2),
    "mobilenet_v1_0.75_192.uint8_qat_tflite": (75.1, 94.1),
    "mobilenet_v2_1.0_224.uint8_qat_tflite": (76.0, 92.6),
    "mobilenet_v2_1.0_224.int8_ptq_tflite": (77.2, 94.4),
    "efficientnet_lite0.fp32_onnx": (82.8, 95.0),
    "efficientnet_lite0.fp16_onnx": (82.8, 95.0),
    "efficientnet_lite0.int8_static_onnx": (83.1, 95.3),
    "efficientnet_lite0.int8_dynamic_onnx": (77.2, 95.0),
    "squeezenet1.1_places365.fp32_onnx": (22.4, 45.1),
    "squeezenet1.1_places365.fp16_onnx": (22.4, 45.1),
    "squeezenet1.1_places365.int8_static_onnx": (22.2, 44.7),
    "squeezenet1.1_places365.int8_dynamic_onnx": (21.5, 43.5),
}
MARGIN = 1.0


@cache
def photos_for(task: str):
    if task == "classification":
        return tuple(imagenet_photos(EVAL / "imagenet_val1300"))
    return tuple(places365_photos(EVAL / "places_miniplaces"))


def accuracy(classifier: Classifier, task: str):
    return evaluate(lambda image: classifier.run(image)[0], photos_for(task))


LABELED = [c for c in CATALOG if c.task in ("classification", "scene")]


def test_every_classifier_and_scene_card_has_a_measured_accuracy():
    assert set(MEASURED) == {c.name for c in LABELED}


@pytest.mark.parametrize("card", LABELED, ids=lambda c: c.name)
def test_accuracy_is_what_was_measured(hub, card):
    result = accuracy(Classifier(hub.load(card, threads=2)), card.task)
    top1, top5 = MEASURED[card.name]
    print(f"{card.name}: top-1 {result.top1:.1%} top-5 {result.top5:.1%} on {result.count} photos")
    assert top1 - MARGIN <= result.top1 * 100 <= top1 + MARGIN
    assert top5 - MARGIN <= result.top5 * 100 <= top5 + MARGIN


class _WrongContract(Classifier):
    """The same model fed with a deliberately wrong preprocessing."""

    def __init__(self, model, **changes):
        super().__init__(model)
        self.card = dataclasses.replace(self.card, input=dataclasses.replace(self.card.input, **changes))


class _ShiftedLabels(Classifier):
    """The background class kept: every index off by one."""

    def probabilities(self, raw):
        return raw.reshape(-1)[: len(self.labels)].astype(float)


WRONG = {
    "swapped channel order": lambda m: _WrongContract(
        m, channels="BGR" if m.card.input.channels == "RGB" else "RGB"),
    "unscaled 0..255 input": lambda m: _WrongContract(m, mean=(0.0,) * 3, std=(1.0,) * 3),
    "background offset": _ShiftedLabels,
}


def _applies(mistake: str, name: str) -> bool:
    card = CATALOG[name]
    if mistake == "unscaled 0..255 input":
        return card.input.std != (1.0, 1.0, 1.0)  # else the scaling is inside the graph
    if mistake == "background offset":
        return card.output.background_class
    return True


MISTAKES = [
    (mistake, name)
    for name in ("mobilenet_v1_0.25_128.uint8_qat_tflite", "efficientnet_lite0.fp32_onnx", "squeezenet1.1_places365.fp32_onnx")
    for mistake in WRONG if _applies(mistake, name)
]


@pytest.mark.parametrize("mistake, name", MISTAKES)
def test_a_wrong_preprocessing_falls_below_the_floor(hub, name, mistake):
    result = accuracy(WRONG[mistake](hub.load(name, threads=2)), CATALOG[name].task)
    assert result.top1 * 100 < MEASURED[name][0] - MARGIN


@pytest.mark.parametrize("name", ["mobilenet_v1_0.25_128.uint8_qat_tflite", "efficientnet_lite0.fp32_onnx"])
def test_the_declared_centre_crop_beats_no_crop(hub, name):
    model = hub.load(name, threads=2)
    declared = accuracy(Classifier(model), "classification")
    uncropped = accuracy(_WrongContract(model, crop_fraction=1.0), "classification")
    assert declared.top1 > uncropped.top1
