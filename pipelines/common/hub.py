"""The model hub as the pipelines use it: the store's files, with the calibration photos wired in."""

from __future__ import annotations

from models.hub import ModelHub
from models.store import ModelStore
from pipelines.common.calibration import calibration_inputs


def open_hub(store: ModelStore | None = None) -> ModelHub:
    """A hub over the given store (default: the one the environment names). Loads nothing yet."""
    return ModelHub(store or ModelStore.from_env(), calibration=calibration_inputs)
