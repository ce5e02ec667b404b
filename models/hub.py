"""Loaded models shared by every request: one backend per (card, threads), created on first use."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from models.backends import Backend, backend_class
from models.catalog import ModelCard
from models.store import CalibrationInputs, ModelStore, ResolvedFile

# card -> what its int8 static derivation calibrates on (tensors made by the card's preprocessing)
CalibrationProvider = Callable[[ModelCard], CalibrationInputs]


@dataclass(frozen=True)
class LoadedModel:
    card: ModelCard
    file: ResolvedFile
    backend: Backend


class ModelHub:
    """Backends are safe for concurrent calls, so one per (card, threads) serves everyone.

    `calibration` supplies the calibration inputs of cards whose derived file is calibrated on photos; the
    pipelines provide it (they know how a card turns a photo into a tensor), so loading stays here.
    """

    def __init__(self, store: ModelStore, calibration: CalibrationProvider | None = None):
        self.store = store
        self.calibration = calibration
        self._loaded: dict[tuple[str, int], LoadedModel] = {}
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, int], threading.Lock] = {}

    def load(self, card: ModelCard | str, threads: int = 1) -> LoadedModel:
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
            calibrated = card.recipe is not None and card.recipe.calibration is not None
            inputs = self.calibration(card) if calibrated and self.calibration else None
            resolved = self.store.resolve(card, inputs)
            model = LoadedModel(card, resolved, backend_class(card.runtime)(resolved.path, threads, card.open_batch))
            with self._lock:
                self._loaded[key] = model
            return model

    def loaded(self) -> tuple[LoadedModel, ...]:
        with self._lock:
            return tuple(self._loaded.values())
