"""A person's gallery of enrolled faces, held in one session, matched against new faces; and its JSON export.

A gallery is a value: every change returns a new one, so a session's state is never shared.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field, replace

import numpy as np

from pipelines.common.photos import png_bytes
from pipelines.faces.errors import FaceError
from pipelines.vision.face_embedding import Embeddings, EmbeddingSpaceError, cosine


@dataclass(frozen=True)
class Enrolled:
    name: str
    vector: np.ndarray = field(compare=False)
    crop: np.ndarray = field(compare=False)


@dataclass(frozen=True)
class Gallery:
    """One person's enrolled faces, for one embedder's space."""

    card: str = ""
    space: str = ""
    entries: tuple[Enrolled, ...] = ()

    def names(self) -> list[str]:
        return sorted({e.name for e in self.entries})

    def enroll(self, name: str, embeddings: Embeddings, index: int, crop: np.ndarray) -> Gallery:
        name = " ".join(name.split())
        if not name:
            raise FaceError("give the face a name")
        if len(name) > 80:
            raise FaceError("names are at most 80 characters")
        if self.entries and self.space != embeddings.space:
            raise FaceError(
                f"this gallery holds {self.card} embeddings; {embeddings.card} is another network. Choose "
                f"{self.card} (or another precision of it) or clear the gallery first."
            )
        entry = Enrolled(name, embeddings.vectors[index].copy(), np.asarray(crop).copy())
        return Gallery(embeddings.card if not self.entries else self.card, embeddings.space, self.entries + (entry,))

    def forget(self, name: str) -> Gallery:
        kept = tuple(e for e in self.entries if e.name != name)
        if len(kept) == len(self.entries):
            raise FaceError(f"no one called {name!r} in the gallery")
        return replace(self, entries=kept) if kept else Gallery()

    def as_embeddings(self) -> Embeddings:
        vectors = np.stack([e.vector for e in self.entries]) if self.entries else np.zeros((0, 1), np.float32)
        return Embeddings(self.card, self.space, vectors)


@dataclass(frozen=True)
class Match:
    name: str | None  # None: unknown
    nearest: str | None
    similarity: float

    def describe(self) -> str:
        if self.nearest is None:
            return "no one enrolled yet"
        if self.name:
            return f"{self.name} ({self.similarity:.2f})"
        return f"unknown (nearest: {self.nearest}, {self.similarity:.2f})"


def match_faces(gallery: Gallery, embeddings: Embeddings, threshold: float) -> list[Match]:
    if not gallery.entries:
        return [Match(None, None, 0.0) for _ in range(len(embeddings.vectors))]
    try:
        similarities = cosine(embeddings, gallery.as_embeddings())
    except EmbeddingSpaceError as exc:
        raise FaceError(str(exc)) from None
    names = [e.name for e in gallery.entries]
    matches = []
    for row in similarities:
        best = int(np.argmax(row))
        similarity = float(row[best])
        matches.append(Match(names[best] if similarity >= threshold else None, names[best], similarity))
    return matches


def export_json(gallery: Gallery) -> str:
    """The gallery as JSON: model, names, embeddings and the aligned crops (PNG, base64)."""
    return json.dumps({
        "format": "mobile-vision-lab face gallery 1",
        "card": gallery.card,
        "space": gallery.space,
        "faces": [{"name": e.name, "embedding": [round(float(v), 7) for v in e.vector],
                   "crop_png_base64": base64.b64encode(png_bytes(e.crop)).decode()} for e in gallery.entries],
    }, indent=1)
