"""The model hub as the pipelines use it: the store's files, with the calibration photos wired in."""

from __future__ import annotations

from models.hub import ModelHub
from models.store import ModelStore
from pipelines.common.calibration import calibration_available, calibration_inputs


def open_hub(store: ModelStore | None = None) -> ModelHub:
    """A hub over the given store (default: the one the environment names). Loads nothing yet."""
    store = store or ModelStore.from_env()
    store.calibration_available = calibration_available
    return ModelHub(store, calibration=calibration_inputs)
