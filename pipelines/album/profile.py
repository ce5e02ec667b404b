"""The interest profile: high-level categories from scene scores and object confidences, per photo, then a
histogram over the gallery. Every count is traceable to the photos behind it.

Per photo and category: w_f * scene-based + (1 - w_f) * object-based confidence, where the scene-based
confidence is the summed probability of the Places365 labels mapped to the category and the object-based
one the highest confidence of a COCO class mapped to it (models/data/interest_categories.csv).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from models.catalog import DATA_DIR, read_labels

CATEGORIES = ("Outdoors", "Indoors", "Food", "Transport", "Activity", "Sports", "Music/instruments", "Appliances",
              "Children", "Fashion", "Product/service", "Planting", "Pets/animals", "Culture events", "Locations",
              "Demography")
# the seed's profile card
GROUPS = {
    "Hobbies": ("Activity", "Music/instruments", "Culture events", "Planting", "Fashion"),
    "Food": ("Food",),
    "Pets": ("Pets/animals",),
    "Sports": ("Sports",),
    "Vacation": ("Outdoors", "Locations", "Transport"),
    "Household": ("Indoors", "Appliances", "Children", "Demography", "Product/service"),
}
W_F = 0.5
CATEGORY_THRESHOLD = 0.2  # the reference's
MIN_PHOTOS = 2  # a category is shown only when at least this many photos support it


@dataclass(frozen=True)
class CategoryMap:
    scene: np.ndarray  # [365, 16] 0/1
    objects: np.ndarray  # [80, 16] 0/1


@cache
def category_map() -> CategoryMap:
    places = [line.split(" ")[0] for line in read_labels("categories_places365.txt")]
    coco = list(read_labels("coco80_labels.txt"))
    scene = np.zeros((len(places), len(CATEGORIES)))
    objects = np.zeros((len(coco), len(CATEGORIES)))
    with (DATA_DIR / "interest_categories.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            table, labels = (scene, places) if row["kind"] == "scene" else (objects, coco)
            for category in row["categories"].split(";"):
                table[labels.index(row["label"]), CATEGORIES.index(category)] = 1.0
    return CategoryMap(scene, objects)


def category_scores(scene_probs: np.ndarray, object_confidence: np.ndarray, w_f: float = W_F) -> np.ndarray:
    """[photos, 16] blended category confidences (0..1)."""
    mapping = category_map()
    scene_based = np.clip(np.atleast_2d(scene_probs) @ mapping.scene, 0, 1)
    conf = np.atleast_2d(object_confidence)
    object_based = (conf[:, :, None] * mapping.objects[None]).max(1)
    return w_f * scene_based + (1 - w_f) * object_based


@dataclass(frozen=True)
class ProfileEntry:
    category: str
    group: str
    photos: tuple[int, ...]  # the photos behind it
    mean_score: float


@dataclass(frozen=True)
class Profile:
    entries: tuple[ProfileEntry, ...]  # shown categories (at least MIN_PHOTOS), most photos first
    hidden: tuple[str, ...] = field(default=())  # supported by fewer photos than MIN_PHOTOS

    def groups(self) -> dict[str, int]:
        """Photos per profile-card group (a photo counts once per group)."""
        return {g: len({p for e in self.entries if e.group == g for p in e.photos}) for g in GROUPS}


def group_of(category: str) -> str:
    return next(g for g, members in GROUPS.items() if category in members)


def build_profile(scores: np.ndarray, threshold: float = CATEGORY_THRESHOLD, min_photos: int = MIN_PHOTOS) -> Profile:
    entries, hidden = [], []
    for k, category in enumerate(CATEGORIES):
        photos = tuple(int(i) for i in np.flatnonzero(scores[:, k] >= threshold))
        if len(photos) >= min_photos:
            entries.append(ProfileEntry(category, group_of(category), photos, float(scores[list(photos), k].mean())))
        elif photos:
            hidden.append(category)
    entries.sort(key=lambda e: (-len(e.photos), CATEGORIES.index(e.category)))
    return Profile(tuple(entries), tuple(hidden))


ENVIRONMENT = ("Outdoors", "Indoors")
SPECIFIC = tuple(c for c in CATEGORIES if c not in ENVIRONMENT)


def learn_w_f(scene_probs: np.ndarray, object_confidence: np.ndarray, labels: list[str],
              grid: np.ndarray = np.linspace(0, 1, 21)) -> list[tuple[float, float]]:
    """The seed's search: for each w_f, the share of photos whose top specific category (Indoors and
    Outdoors left out: every photo is one of them) is their labeled category."""
    unknown = sorted(set(labels) - set(SPECIFIC))
    if unknown:
        raise ValueError(f"labels must be specific categories ({', '.join(SPECIFIC)}); got {', '.join(unknown)}")
    columns = [CATEGORIES.index(c) for c in SPECIFIC]
    truth = np.array([SPECIFIC.index(label) for label in labels])
    curve = []
    for w in grid:
        scores = category_scores(scene_probs, object_confidence, float(w))[:, columns]
        curve.append((float(w), float(np.mean(scores.argmax(1) == truth))))
    return curve


def main(argv: list[str] | None = None) -> int:
    """python -m pipelines.album.profile LABELED_FOLDER: learn w_f on photos labeled with a category."""
    import argparse
    from pathlib import Path

    from PIL import Image

    from pipelines.common.hub import open_hub
    from pipelines.vision.classification import SceneRecognizer
    from pipelines.vision.objects import ObjectDetector

    parser = argparse.ArgumentParser(description="Learn w_f (the scene weight) by the seed's grid search: "
                                     "FOLDER holds labels.csv (filename, category) and images/.")
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    hub = open_hub()
    catalog = hub.store.catalog
    scene = SceneRecognizer(hub.load(catalog.default("scene", "album"), 2))
    objects = ObjectDetector(hub.load(catalog.default("object_detection", "album"), 2))
    with (args.folder / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    scene_probs, object_conf = [], []
    for row in rows:
        with Image.open(args.folder / "images" / row["filename"]) as image:
            photo = image.convert("RGB")
        scene_probs.append(scene(photo).probabilities)
        object_conf.append(objects(photo).class_confidence)
    curve = learn_w_f(np.stack(scene_probs), np.stack(object_conf), [r["category"] for r in rows])
    best = max(curve, key=lambda point: point[1])
    print("| w_f | accuracy |\n|---|---|")
    for w, accuracy in curve:
        print(f"| {w:.2f} | {100 * accuracy:.1f} %{' (best)' if (w, accuracy) == best else ''} |")
    print(f"\nw_f* = {best[0]:.2f} on {len(rows)} labeled photos (default {W_F})")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
