"""What a photo is about, learned: one classifier per source (C_f on scene scores, C_o on object confidences,
C_i on the ImageNet classifier's scores), fused by weights chosen on held-out predictions (the seed's grid search,
over three sources), with a threshold per category chosen on held-out predictions for a stated precision.

    python -m pipelines.album.interest_train train       # writes models/data/interest/model.json
    python -m pipelines.album.interest_train evaluate LABELED_FOLDER

Each classifier reads its source's scores summed per category through the reviewed class-to-category files in
models/data/interest/ (ImageNet 1000, Places365 365, COCO 80 classes) and learns how much they say: a logistic
model over the log of each category's mass with one slope shared by all categories (so a category with few
labeled photos is read like the others) and per-category slopes and biases (L2, chosen on held-out folds).
Labels come from those files class by class: ImageNet and MiniPlaces photos take their class's category, a
COCO photo the category of its largest labeled object; a photo of none of them is "none". The labeled photos
of ../shared/eval are split by a hash of their name into train (60 %), validation (20 %) and test (20 %: the
figures reported); nothing is trained or tuned on a reported photo. The train and validation photos are used
cross-fitted (FOLDS folds): regularisation, weights and thresholds are chosen on out-of-fold predictions.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from models.catalog import DATA_DIR

SUBJECTS = ("Food", "Transport", "Activity", "Sports", "Music/instruments", "Appliances", "Children", "Fashion",
            "Product/service", "Planting", "Pets/animals", "Culture events", "Locations")
CLASSES = SUBJECTS + ("none",)
SOURCES = {"scene": "places365.csv", "objects": "coco.csv", "imagenet": "imagenet.csv"}
SOURCE_NAMES = {"scene": "scene", "objects": "object", "imagenet": "ImageNet class"}
MODEL_JSON = DATA_DIR / "interest" / "model.json"
# Each threshold is the lowest that keeps held-out precision at least this (averaged over the kinds of photo, as
# the sources' weights are chosen). A further category is held to more: a wrong second listing invents an interest
# the person never photographed, where a missed one only leaves a photo under its strongest category.
PRECISION_TARGET = 0.8  # a photo's strongest category
FURTHER_PRECISION_TARGET = 0.9  # any other category
MIN_PHOTOS = 4  # fewer labeled photos of a category than this: it cannot be measured, so never a further category
L2_GRID = (1e-3, 1e-2, 1e-1, 1.0)
FOLDS = 5  # weights and thresholds are chosen on out-of-fold predictions of the train and validation photos
RECIPE_VERSION = 3  # 2: thresholds balanced over kinds of photo; further categories at 0.9. 3: cross-fitted


@cache
def class_categories(source: str) -> tuple[tuple[str, ...], np.ndarray]:
    """The source's class names and a [classes, len(CLASSES)] one-hot of their reviewed categories."""
    with (DATA_DIR / "interest" / SOURCES[source]).open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    onehot = np.zeros((len(rows), len(CLASSES)))
    for k, row in enumerate(rows):
        onehot[k, CLASSES.index(row["category"])] = 1.0
    return tuple(r["label"] for r in rows), onehot


def category_masses(source: str, scores: np.ndarray) -> np.ndarray:
    """[photos, CLASSES]: the source's scores per category through the reviewed class-to-category file (summed
    probability; objects: the strongest confidence, as the seed takes the maximum over a photo's detections)."""
    scores = np.atleast_2d(np.asarray(scores, np.float64))
    onehot = class_categories(source)[1]
    return (scores[:, :, None] * onehot[None]).max(1) if source == "objects" else scores @ onehot


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


@dataclass(frozen=True)
class SourceClassifier:
    """Per category c: logit_c = (slope + slope_c) * log(mass_c + EPS) + bias_c. The shared slope is learned from
    every category, so a category with few labeled photos is still read right; slope_c and bias_c adjust each
    category (L2-regularised towards zero)."""

    slope: float
    slopes: np.ndarray  # [CLASSES]
    biases: np.ndarray  # [CLASSES]

    EPS = 1e-3

    def logits(self, masses: np.ndarray) -> np.ndarray:
        return (self.slope + self.slopes) * np.log(masses + self.EPS) + self.biases

    def probabilities(self, masses: np.ndarray) -> np.ndarray:
        return _softmax(self.logits(masses))


def balanced_weights(y: np.ndarray) -> np.ndarray:
    """Per photo 1 / (photos of its category), summing to 1: every category counts alike, whatever share of the
    labeled photos it happens to have (a gallery's own mix is unknown)."""
    counts = np.bincount(y, minlength=len(CLASSES))
    weights = 1.0 / counts[y]
    return weights / weights.sum()


def fit_source(masses: np.ndarray, y: np.ndarray, l2: float) -> SourceClassifier:
    """Class-balanced maximum likelihood (L-BFGS) with L2 on the per-category terms."""
    from scipy.optimize import minimize

    k = len(CLASSES)
    onehot, g, weight = np.eye(k)[y], np.log(masses + SourceClassifier.EPS), balanced_weights(y)[:, None]

    def loss(theta):
        slope, slopes, biases = theta[0], theta[1:k + 1], theta[k + 1:]
        p = _softmax((slope + slopes) * g + biases)
        value = -np.sum(weight * onehot * np.log(p + 1e-12)) + l2 * (np.sum(slopes ** 2) + np.sum(biases ** 2))
        grad_z = weight * (p - onehot)
        grad_slopes = np.sum(grad_z * g, 0)
        return value, np.concatenate([[grad_slopes.sum()], grad_slopes + 2 * l2 * slopes, grad_z.sum(0) + 2 * l2 * biases])

    theta = minimize(loss, np.concatenate([[1.0], np.zeros(2 * k)]), jac=True, method="L-BFGS-B").x
    return SourceClassifier(float(theta[0]), theta[1:k + 1], theta[k + 1:])


def fuse(per_source: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """The seed's blend, extended to three sources: sum_s w_s * cs_s (weights summing to 1)."""
    return sum(weights[s] * p for s, p in per_source.items())


def listed(fused: np.ndarray, top_floor: float, thresholds: dict[str, float | None]) -> np.ndarray:
    """[photos, SUBJECTS]: the categories each photo is listed under. A photo's strongest category (when it is
    not 'none') at top_floor or more; any other category at its own threshold or more (None: never)."""
    top = fused.argmax(1)
    out = np.zeros((len(fused), len(SUBJECTS)), bool)
    for k, category in enumerate(SUBJECTS):
        strongest = (top == k) & (fused[:, k] >= top_floor)
        threshold = thresholds.get(category)
        out[:, k] = strongest | (fused[:, k] >= threshold if threshold is not None else False)
    return out


@dataclass(frozen=True)
class InterestModel:
    """The learned profile: per source a classifier, the sources' weights, and per category a threshold (None:
    the category cannot be seen well enough here, and is never listed)."""

    classifiers: dict[str, SourceClassifier]
    weights: dict[str, float]
    top_floor: float  # a photo's strongest category is listed from this score on
    thresholds: dict[str, float | None]  # a further category, from its own score on (None: cannot be seen well)
    measured: dict[str, dict]  # per category, on the test photos: precision, recall, photos
    recipe: dict
    close_ups: dict[str, dict] = field(default_factory=dict)  # the same on close-ups of one subject, cross-validated

    def source_probabilities(self, source: str, scores: np.ndarray) -> np.ndarray:
        return self.classifiers[source].probabilities(category_masses(source, scores))

    def probabilities(self, scores: dict[str, np.ndarray], weights: dict[str, float] | None = None) -> np.ndarray:
        """[photos, CLASSES]: the sources' probabilities fused with the learned weights."""
        weights = weights or self.weights
        return fuse({s: self.source_probabilities(s, scores[s]) for s in SOURCES}, weights)

    def listed(self, scores: dict[str, np.ndarray], weights: dict[str, float] | None = None) -> np.ndarray:
        return listed(self.probabilities(scores, weights), self.top_floor, self.thresholds)

    def to_json(self) -> str:
        def rounded(a: np.ndarray) -> list:
            return np.round(a, 6).tolist()
        return json.dumps({"recipe": self.recipe, "classes": list(CLASSES), "weights": self.weights,
                           "top_floor": self.top_floor, "thresholds": self.thresholds, "measured": self.measured,
                           "close_ups": self.close_ups,
                           "classifiers": {s: {"slope": round(c.slope, 6), "slopes": rounded(c.slopes),
                                               "biases": rounded(c.biases)} for s, c in self.classifiers.items()}},
                          indent=1)

    @classmethod
    def from_json(cls, text: str) -> InterestModel:
        raw = json.loads(text)
        if raw["classes"] != list(CLASSES):
            raise ValueError("the interest model was trained on other categories: train it again")
        return cls({s: SourceClassifier(c["slope"], np.asarray(c["slopes"]), np.asarray(c["biases"]))
                    for s, c in raw["classifiers"].items()}, raw["weights"], raw["top_floor"], raw["thresholds"],
                   raw["measured"], raw["recipe"], raw["close_ups"])


@cache
def _load(path: Path, mtime_ns: int) -> InterestModel:
    return InterestModel.from_json(path.read_text(encoding="utf-8"))


def interest_model(path: Path = MODEL_JSON) -> InterestModel:
    """The trained model, read once per version of its file."""
    return _load(path, path.stat().st_mtime_ns)


def evidence(model: InterestModel, scores: dict[str, np.ndarray], photo: int, category: str,
             weights: dict[str, float] | None = None) -> str:
    """Which source fired for a photo's category, and its strongest class there: 'ImageNet class: banjo 0.93'."""
    weights = weights or model.weights
    k = CLASSES.index(category)
    contributions = {s: weights[s] * model.source_probabilities(s, scores[s][photo])[0, k] for s in SOURCES}
    source = max(contributions, key=contributions.get)
    names, onehot = class_categories(source)
    values = np.asarray(scores[source][photo], np.float64) * (onehot[:, k] if onehot[:, k].any() else 1.0)
    top = int(np.argmax(values))
    return f"{SOURCE_NAMES[source]}: {names[top].lstrip('/').split('/', 1)[-1].replace('_', ' ')} {values[top]:.2f}"
