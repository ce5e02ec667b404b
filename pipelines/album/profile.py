"""The interest profile: what each photo is about, then a histogram over the gallery in the reference app's 16
categories, every number traceable to the photos behind it and to what made each photo count.

- The subject categories (Food, Transport, ..., Locations) come from the learned classifiers of
  pipelines.album.interest: C_f on scene scores, C_o on object confidences, C_i on ImageNet scores, fused
  with the weights learned on out-of-fold predictions. A photo is listed under its strongest category (at the
  learned floor) and under any further category over that category's own threshold.
- Outdoors / Indoors: Places365's own indoor/outdoor labels (the majority of the top-10 scenes).
- Demography: the photo shows people (a person detected at PERSON_CONFIDENCE or more, or a face found inside a
  box the detector gives a person at FACE_PERSON_CONFIDENCE or more).
A category is shown when at least MIN_PHOTOS photos support it. Each photo's evidence names the source that
fired (scene, object or ImageNet class, or the faces found) and its strongest class there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipelines.album.interest import SOURCES, SUBJECTS, InterestModel, evidence

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
MIN_PHOTOS = 2  # a category is shown only when at least this many photos support it
PERSON_CLASS = 0  # COCO's people
PERSON_CONFIDENCE = 0.5
# A face counts as people only inside a box the detector gives a person at this or more: MTCNN finds faces on
# animals and things (a Newfoundland's at 0.87, person 0.002; a motorcycle's wheel, while the one person box, 0.39,
# is in the shelves behind it), while each of the 171 photos of ../shared/eval with a real face found (portraits,
# face chips, groups, an album, COCO) has it in a person box at 0.099 or more; 82 % of the animal close-ups have no
# person at 0.05 anywhere.
FACE_PERSON_CONFIDENCE = 0.05
# how the categories that are not learned are read
_PLACES_IO = "not learned: Places365's own indoor/outdoor labels"
READ_DIRECTLY = {
    "Outdoors": _PLACES_IO,
    "Indoors": _PLACES_IO,
    "Demography": f"not learned: a person detected at {PERSON_CONFIDENCE:g}, or a face inside a person box at "
                  f"{FACE_PERSON_CONFIDENCE:g}",
}


@dataclass(frozen=True)
class PhotoSignals:
    """What the profile reads of each photo: the three sources' scores, its environment and its people."""

    scores: dict[str, np.ndarray]  # source -> [photos, classes]
    indoor: np.ndarray  # [photos] bool
    person: np.ndarray  # [photos] the detector's highest score for a person
    faces: np.ndarray  # [photos] faces found
    face_person: np.ndarray  # [photos] the highest score of a person box holding one of its faces (0: none)

    @property
    def people(self) -> np.ndarray:
        """[photos] bool: the photo shows people."""
        return (self.person >= PERSON_CONFIDENCE) | (self.face_person >= FACE_PERSON_CONFIDENCE)

    def people_evidence(self, i: int) -> str:
        if self.person[i] >= PERSON_CONFIDENCE:
            return f"object: person {self.person[i]:.2f}"
        return f"face: {self.faces[i]} found, in a person box at {self.face_person[i]:.2f}"


@dataclass(frozen=True)
class ProfileEntry:
    category: str
    group: str
    photos: tuple[int, ...]  # the photos behind it
    mean_score: float
    evidence: tuple[str, ...] = ()  # per photo, what made it count


@dataclass(frozen=True)
class Profile:
    entries: tuple[ProfileEntry, ...]  # shown categories (at least MIN_PHOTOS), most photos first
    hidden: tuple[ProfileEntry, ...] = field(default=())  # seen in fewer photos than MIN_PHOTOS: not an interest

    def categories_per_photo(self, photos: int) -> list[list[str]]:
        """Per photo, the shown categories it is listed under (most photos first)."""
        out = [[] for _ in range(photos)]
        for entry in self.entries:
            for i in entry.photos:
                out[i].append(entry.category)
        return out

    def counts(self) -> dict[str, int]:
        """How many items (photos, trips or days, as the profile was built) stand behind each shown category."""
        return {e.category: len(e.photos) for e in self.entries}

    def groups(self) -> dict[str, int]:
        """Photos per profile-card group (a photo counts once per group)."""
        return {g: len({p for e in self.entries if e.group == g for p in e.photos}) for g in GROUPS}


def group_of(category: str) -> str:
    return next(g for g, members in GROUPS.items() if category in members)


def scene_weighted(model: InterestModel, w_f: float | None) -> dict[str, float]:
    """The learned weights, or, when a person sets the scenes' weight w_f, the other sources sharing the rest
    in their learned proportion."""
    if w_f is None:
        return model.weights
    others = {s: w for s, w in model.weights.items() if s != "scene"}
    total = sum(others.values()) or 1.0
    return {"scene": w_f, **{s: (1 - w_f) * w / total for s, w in others.items()}}


def photo_categories(model: InterestModel, signals: PhotoSignals, weights: dict[str, float]):
    """[photos, 16] listed, [photos, 16] scores, and a function naming what made photo i count for a category."""
    fused = model.probabilities(signals.scores, weights)
    shown_subjects = model.listed(signals.scores, weights)
    photos = len(signals.indoor)
    listed, scores = np.zeros((photos, len(CATEGORIES)), bool), np.zeros((photos, len(CATEGORIES)))
    for k, category in enumerate(SUBJECTS):
        column = CATEGORIES.index(category)
        listed[:, column], scores[:, column] = shown_subjects[:, k], fused[:, k]
    for category, values in (("Indoors", signals.indoor), ("Outdoors", ~signals.indoor), ("Demography", signals.people)):
        listed[:, CATEGORIES.index(category)] = values
        scores[:, CATEGORIES.index(category)] = values.astype(float)

    def why(i: int, category: str) -> str:
        if category in SUBJECTS:
            return evidence(model, signals.scores, i, category, weights)
        if category == "Demography":
            return signals.people_evidence(i)
        return {"Indoors": "scene: indoor", "Outdoors": "scene: outdoor"}[category]

    return listed, scores, why


def build_profile(listed: np.ndarray, scores: np.ndarray, why=None, min_photos: int = MIN_PHOTOS) -> Profile:
    entries, hidden = [], []
    for k, category in enumerate(CATEGORIES):
        photos = tuple(int(i) for i in np.flatnonzero(listed[:, k]))
        if photos:
            entry = ProfileEntry(category, group_of(category), photos, float(scores[list(photos), k].mean()),
                                 tuple(why(i, category) for i in photos) if why else ())
            (entries if len(photos) >= min_photos else hidden).append(entry)
    entries.sort(key=lambda e: (-len(e.photos), CATEGORIES.index(e.category)))
    return Profile(tuple(entries), tuple(hidden))


def too_few_photos(profile: Profile, names: list[str]) -> str:
    """The categories seen in too few photos to be an interest, with their photos: 'Food (coffee.png)'; '' if none.
    A person with a small album then sees what each photo showed, not an empty profile."""
    return "; ".join(f"{e.category} ({', '.join(names[i] for i in e.photos)})" for e in profile.hidden)


def face_on_person(face_boxes: np.ndarray, person_boxes: np.ndarray) -> float:
    """The highest score of a person box holding a face's centre; 0 when there is no face or none is inside one.
    Boxes: rows of x1, y1, x2, y2 (in one scale) and the score."""
    if not len(face_boxes) or not len(person_boxes):
        return 0.0
    x = (face_boxes[:, 0, None] + face_boxes[:, 2, None]) / 2
    y = (face_boxes[:, 1, None] + face_boxes[:, 3, None]) / 2
    p = person_boxes.T
    inside = (p[0] <= x) & (x <= p[2]) & (p[1] <= y) & (y <= p[3])
    return float(np.where(inside, p[4], 0.0).max())


def signals_of(scene: np.ndarray, objects: np.ndarray, imagenet: np.ndarray, indoor: np.ndarray,
               face_boxes: list[np.ndarray], person_boxes: list[np.ndarray]) -> PhotoSignals:
    """`face_boxes` / `person_boxes`: per photo, its faces and the detector's people (x1, y1, x2, y2, score)."""
    return PhotoSignals({"scene": scene, "objects": objects, "imagenet": imagenet}, np.asarray(indoor, bool),
                        objects[:, PERSON_CLASS], np.array([len(f) for f in face_boxes], int),
                        np.array([face_on_person(f, p) for f, p in zip(face_boxes, person_boxes)], float))


__all__ = ["CATEGORIES", "GROUPS", "MIN_PHOTOS", "READ_DIRECTLY", "SOURCES", "Profile", "ProfileEntry",
           "PhotoSignals", "build_profile", "face_on_person", "photo_categories", "scene_weighted", "signals_of",
           "too_few_photos"]
