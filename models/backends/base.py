"""The runtime interface: float tensors in, float tensors out. A backend never knows what they mean."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int | str | None, ...]
    dtype: str  # as stored in the model file: float32, float16, uint8, int8


class BackendError(RuntimeError):
    """The runtime refused a model file or an input; the message says which and why."""


class Backend(ABC):
    """One loaded model file. Safe to call from several threads at once."""

    runtime: str

    def __init__(self, path, threads: int, open_batch: bool = False):
        """open_batch: a file fixed at batch 1 is made to take any batch (where the runtime needs it)."""
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self.path = path
        self.threads = threads

    @property
    @abstractmethod
    def inputs(self) -> tuple[TensorSpec, ...]: ...

    @property
    @abstractmethod
    def outputs(self) -> tuple[TensorSpec, ...]: ...

    @abstractmethod
    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """Run on real-valued float inputs (in the order of `inputs`); returns real-valued float outputs."""
