"""Loaded models shared by every request: one backend per (card, threads), created on first use."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from models.backends import Backend, backend_class
from models.catalog import ModelCard
from models.store import CalibrationInputs, ModelStore, ResolvedFile


@dataclass(frozen=True)
class LoadedModel:
    card: ModelCard
    file: ResolvedFile
    backend: Backend


class ModelHub:
    """Backends are safe for concurrent calls, so one per (card, threads) serves everyone."""

    def __init__(self, store: ModelStore):
        self.store = store
        self._loaded: dict[tuple[str, int], LoadedModel] = {}
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, int], threading.Lock] = {}

    def load(self, card: ModelCard | str, threads: int, calibration: CalibrationInputs | None = None) -> LoadedModel:
        card = self.store.catalog[card] if isinstance(card, str) else card
        key = (card.name, threads)
        with self._lock:
            if key in self._loaded:
                return self._loaded[key]
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:  # one load per key; others wait for it rather than loading twice
            with self._lock:
                if key in self._loaded:
                    return self._loaded[key]
            resolved = self.store.resolve(card, calibration)
            model = LoadedModel(card, resolved, backend_class(card.runtime)(resolved.path, threads))
            with self._lock:
                self._loaded[key] = model
            return model

    def loaded(self) -> tuple[LoadedModel, ...]:
        with self._lock:
            return tuple(self._loaded.values())
