"""What every tab's handlers share, built once per app: no per-request state lives here."""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from models.catalog import Catalog
from models.hub import ModelHub
from models.store import Availability, ModelStore
from pipelines.common.calibration import sample_photo_paths
from pipelines.common.hub import open_hub
from pipelines.faces.saved import SavedGalleries
from pipelines.lab.sandbox import SandboxLimits
from pipelines.lab.records import CardEvaluation, read_evaluations
from ui.sessions import new_workdir

EXAMPLE_PHOTOS = ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg")
FACE_EXAMPLES = ("astronaut.png", "coffee.png")


def default_data_dir() -> Path:
    return Path(os.environ.get("MVL_DATA_DIR") or Path.home() / ".local" / "share" / "mobile-vision-lab")


class AlbumWorkers:
    """The album's worker processes (lower priority than the interactive requests), started on the first
    album and kept, so their models load once."""

    def __init__(self, store: ModelStore):
        self._store, self._engine, self._lock = store, None, threading.Lock()

    def engine(self):
        with self._lock:
            if self._engine is None:
                from pipelines.album.analysis import ProcessEngine

                self._engine = ProcessEngine(self._store)
            return self._engine


@dataclass(frozen=True)
class AppContext:
    hub: ModelHub
    evaluations: dict[str, CardEvaluation]  # computed by python -m pipelines.lab.evaluate, not per page view
    saved: SavedGalleries
    examples_dir: Path
    names: frozenset[str] = field(default=frozenset())  # model names a request may log
    availability: dict[str, Availability] = field(default_factory=dict)  # per card, as the app started
    upload_limits: SandboxLimits = field(default_factory=SandboxLimits.from_env)  # for uploaded models
    album_workers: AlbumWorkers | None = None

    @property
    def catalog(self) -> Catalog:
        return self.hub.store.catalog

    def available(self, name: str) -> bool:
        """A card by name, or a face detector by its display name (all its cards)."""
        if name in self.availability:
            return self.availability[name].available
        cards = [c for c in self.catalog.for_task("face_detection") if c.display == name]
        return bool(cards) and all(self.availability[c.name].available for c in cards)

    def why_unavailable(self, name: str) -> str:
        if name in self.availability:
            return self.availability[name].how
        cards = [c for c in self.catalog.for_task("face_detection") if c.display == name]
        return next((self.availability[c.name].how for c in cards if not self.availability[c.name].available), "")

    def default(self, task: str, purpose: str = "photo") -> str:
        """The catalog's default for a task, or, where its file cannot be had here, the first one that can."""
        chosen = self.catalog.default(task, purpose)
        if self.available(chosen):
            return chosen
        options = self.catalog.displays(task) if task == "face_detection" else \
            [c.name for c in self.catalog.for_task(task)]
        return next((o for o in options if self.available(o)), chosen)

    @classmethod
    def create(cls, store: ModelStore | None = None) -> AppContext:
        hub = open_hub(store)
        catalog = hub.store.catalog
        names = frozenset({c.name for c in catalog} | set(catalog.displays("face_detection")))
        availability = {c.name: hub.store.availability(c) for c in catalog}
        return cls(hub, read_evaluations(), SavedGalleries(default_data_dir() / "galleries.sqlite"),
                   new_workdir("mvl-examples-"), names, availability,
                   album_workers=AlbumWorkers(hub.store))

    def examples(self, names: tuple[str, ...]) -> list[list[str]]:
        """scikit-image's bundled photos as example inputs, copied where Gradio may serve them."""
        samples = {p.name: p for p in sample_photo_paths()}
        return [[str(shutil.copy(samples[n], self.examples_dir / n))] for n in names if n in samples]
