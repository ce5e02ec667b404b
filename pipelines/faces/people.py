"""Faces grouped into people across photos: one clustering for the Faces tab and for albums."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def cluster(vectors: np.ndarray, threshold: float) -> np.ndarray:
    """Agglomerative clustering (average linkage) of L2-normalised vectors: faces whose average cosine
    similarity is at least `threshold` end in one cluster. Returns a cluster number per face, 0.. by size."""
    if len(vectors) == 0:
        return np.zeros(0, np.int64)
    if len(vectors) == 1:
        return np.zeros(1, np.int64)
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    distances = np.clip(pdist(vectors, "cosine"), 0, 2)
    labels = fcluster(linkage(distances, "average"), t=1.0 - threshold, criterion="distance")
    order = {label: rank for rank, (label, _) in
             enumerate(sorted(((lab, -(labels == lab).sum()) for lab in set(labels)), key=lambda x: (x[1], x[0])))}
    return np.array([order[label] for label in labels], np.int64)


@dataclass(frozen=True)
class Person:
    number: int  # 1.. by number of faces
    faces: tuple[tuple[int, int], ...]  # (photo index, face index)
    crop: np.ndarray = field(compare=False)  # one face of theirs

    @property
    def photos(self) -> tuple[int, ...]:
        """The photos they are in, in order."""
        return tuple(sorted({p for p, _ in self.faces}))


def group_people(vectors: Sequence[np.ndarray], crops: Sequence[np.ndarray], threshold: float) -> list[Person]:
    """People among the faces of several photos: per photo, its face embeddings [faces, D] (one network's)
    and aligned crops [faces, 112, 112, 3]."""
    index = [(p, f) for p, v in enumerate(vectors) for f in range(len(v))]
    if not index:
        return []
    labels = cluster(np.concatenate([v for v in vectors if len(v)]), threshold)
    people = []
    for number in range(labels.max() + 1):
        members = tuple(index[i] for i in np.flatnonzero(labels == number))
        photo, face = members[0]
        people.append(Person(number + 1, members, crops[photo][face]))
    return people


def frequent_photos(people: Sequence[Person], at_least: int) -> tuple[int, ...]:
    """Photos showing someone seen in at least `at_least` photos: the people who matter to the owner."""
    return tuple(sorted({p for person in people if len(person.photos) >= at_least for p in person.photos}))
