"""Galleries their owners chose to keep, in one SQLite file, each reached only with its own random key.

The database keeps a hash of the key, never the key.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from pipelines.common.photos import png_bytes, png_pixels
from pipelines.faces.errors import FaceError
from pipelines.faces.gallery import Enrolled, Gallery


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
                (self._hash(key), i, e.name, np.asarray(e.vector, np.float32).tobytes(), png_bytes(e.crop))
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
        entries = tuple(Enrolled(name, np.frombuffer(vector, np.float32).copy(), png_pixels(crop)) for name, vector, crop in faces)
        return Gallery(row[0], row[1], entries)

    def delete(self, key: str) -> None:
        with self._connect() as db:
            if db.execute("DELETE FROM galleries WHERE key_hash = ?", (self._hash(key),)).rowcount == 0:
                raise FaceError("no saved gallery has that key")
