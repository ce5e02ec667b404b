"""The Faces tab's work: faces found, aligned and embedded; matched against a person's gallery; grouped
into people across photos; and a gallery saved to SQLite only when its owner asks.

A gallery is a value held in one session. Saved galleries are reachable only with the random key handed to
whoever saved it; the database keeps a hash of that key, never the key.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from models.hub import ModelHub
from pipelines.classification import load_model
from pipelines.face_detection import DetectorOptions, FaceDetections, load_detector
from pipelines.face_recognition import Embedder, Embeddings, EmbeddingSpaceError, align_face, cluster, cosine
from pipelines.face_verification import read_thresholds
from pipelines.photos import Photo


class FaceError(ValueError):
    """A request about faces that cannot be done as asked; the message says why."""


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
        raise FaceError(f"{card_name} has no match threshold yet: run python -m pipelines.face_verification")
    return thresholds[card_name].threshold


def analyse_faces(hub: ModelHub, photo: Photo, detector: str, embedder: str, options: DetectorOptions,
                  threads: int = 1) -> FaceAnalysis:
    card = hub.store.catalog[embedder]
    if card.task != "face_embedding":
        raise FaceError(f"{embedder} is not a face embedder")
    threshold = match_threshold(card.name)
    detections = load_detector(hub, detector, threads)(photo.image, options)
    start = time.perf_counter_ns()
    crops = np.stack([align_face(photo.image, f) for f in detections.faces]) if detections.faces else \
        np.zeros((0, 112, 112, 3), np.uint8)
    align_ms = (time.perf_counter_ns() - start) / 1e6
    embeddings = Embedder(load_model(hub, card, threads))(crops)
    stages = tuple((f"detection: {k}", v) for k, v in detections.stage_ms.items()) + (
        ("alignment (all faces)", align_ms),
        ("embedding (per face)", embeddings.ms_per_face),
    )
    return FaceAnalysis(detections, crops, embeddings, threshold, stages)


# -- the gallery ------------------------------------------------------------------------------------


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


# -- people across photos ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    number: int  # 1.. by number of faces
    faces: tuple[tuple[int, int], ...]  # (photo index, face index)
    crop: np.ndarray = field(compare=False)  # one face of theirs


def group_people(analyses: list[FaceAnalysis], threshold: float) -> list[Person]:
    spaces = {a.embeddings.space for a in analyses if len(a.embeddings.vectors)}
    if len(spaces) > 1:
        raise FaceError("the photos were embedded by different networks")
    index = [(p, f) for p, a in enumerate(analyses) for f in range(len(a.embeddings.vectors))]
    if not index:
        return []
    vectors = np.concatenate([a.embeddings.vectors for a in analyses if len(a.embeddings.vectors)])
    labels = cluster(vectors, threshold)
    people = []
    for number in range(labels.max() + 1):
        members = tuple(index[i] for i in np.flatnonzero(labels == number))
        photo, face = members[0]
        people.append(Person(number + 1, members, analyses[photo].crops[face]))
    return people


def person_embeddings(analyses: list[FaceAnalysis], people: list[Person]) -> Embeddings:
    """One embedding per person (their first face), to name them against a gallery."""
    if not people:
        return Embeddings("", "", np.zeros((0, 1), np.float32))
    first = analyses[people[0].faces[0][0]].embeddings
    vectors = np.stack([analyses[p].embeddings.vectors[f] for person in people for p, f in person.faces[:1]])
    return Embeddings(first.card, first.space, vectors)


# -- saved galleries (opt-in) ------------------------------------------------------------------------------


def _png(crop: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(crop, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _from_png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def export_json(gallery: Gallery) -> str:
    """The gallery as JSON: model, names, embeddings and the aligned crops (PNG, base64)."""
    return json.dumps({
        "format": "mobile-vision-lab face gallery 1",
        "card": gallery.card,
        "space": gallery.space,
        "faces": [{"name": e.name, "embedding": [round(float(v), 7) for v in e.vector],
                   "crop_png_base64": base64.b64encode(_png(e.crop)).decode()} for e in gallery.entries],
    }, indent=1)


class SavedGalleries:
    """Galleries their owners chose to keep, in one SQLite file. Each is reached with its own random key."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @contextmanager
    def _connect(self):
        """A connection for one transaction: committed on success, rolled back on error, always closed."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=10)
        try:
            with connection:
                self._schema(connection)
                yield connection
        finally:
            connection.close()

    @staticmethod
    def _schema(connection: sqlite3.Connection) -> None:
        connection.execute("PRAGMA foreign_keys = ON")
        connection.executescript("""
            CREATE TABLE IF NOT EXISTS galleries (
                key_hash TEXT PRIMARY KEY, card TEXT NOT NULL, space TEXT NOT NULL, saved_at TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS faces (
                key_hash TEXT NOT NULL REFERENCES galleries(key_hash) ON DELETE CASCADE,
                position INTEGER NOT NULL, name TEXT NOT NULL, vector BLOB NOT NULL, crop_png BLOB NOT NULL);
        """)

    @staticmethod
    def _hash(key: str) -> str:
        return hashlib.sha256(key.strip().encode()).hexdigest()

    def save(self, gallery: Gallery) -> str:
        if not gallery.entries:
            raise FaceError("the gallery is empty: enroll someone first")
        key = secrets.token_urlsafe(18)
        with self._connect() as db:
            db.execute("INSERT INTO galleries VALUES (?, ?, ?, datetime('now'))", (self._hash(key), gallery.card, gallery.space))
            db.executemany("INSERT INTO faces VALUES (?, ?, ?, ?, ?)", [
                (self._hash(key), i, e.name, np.asarray(e.vector, np.float32).tobytes(), _png(e.crop))
                for i, e in enumerate(gallery.entries)
            ])
        return key

    def load(self, key: str) -> Gallery:
        with self._connect() as db:
            row = db.execute("SELECT card, space FROM galleries WHERE key_hash = ?", (self._hash(key),)).fetchone()
            if row is None:
                raise FaceError("no saved gallery has that key")
            faces = db.execute("SELECT name, vector, crop_png FROM faces WHERE key_hash = ? ORDER BY position",
                               (self._hash(key),)).fetchall()
        entries = tuple(Enrolled(name, np.frombuffer(vector, np.float32).copy(), _from_png(crop)) for name, vector, crop in faces)
        return Gallery(row[0], row[1], entries)

    def delete(self, key: str) -> None:
        with self._connect() as db:
            if db.execute("DELETE FROM galleries WHERE key_hash = ?", (self._hash(key),)).rowcount == 0:
                raise FaceError("no saved gallery has that key")
