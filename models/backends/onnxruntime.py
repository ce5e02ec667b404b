"""ONNX Runtime on the CPU execution provider."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from models.backends.base import Backend, BackendError, TensorSpec

_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8", "tensor(int8)": "int8"}


class OnnxRuntimeBackend(Backend):
    """InferenceSession.run is thread-safe, so one session serves concurrent requests."""

    runtime = "onnx"

    def __init__(self, path, threads: int):
        super().__init__(path, threads)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle pool threads would otherwise spin and take cores from the other requests' sessions.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own untyped errors for bad files
            raise BackendError(f"ONNX Runtime cannot load {path}: {exc}") from exc
        self._inputs = tuple(
            TensorSpec(i.name, tuple(i.shape), _ORT_TYPES.get(i.type, i.type)) for i in self._session.get_inputs()
        )
        self._outputs = tuple(
            TensorSpec(o.name, tuple(o.shape), _ORT_TYPES.get(o.type, o.type)) for o in self._session.get_outputs()
        )

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._outputs

    def feeds(self, *inputs: np.ndarray) -> dict[str, np.ndarray]:
        if len(inputs) != len(self._inputs):
            raise BackendError(f"{self.path} takes {len(self._inputs)} inputs, got {len(inputs)}")
        return {
            spec.name: np.ascontiguousarray(x, dtype=spec.dtype) for spec, x in zip(self._inputs, inputs)
        }

    def run_feeds(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            return self._session.run(None, feeds)
        except Exception as exc:  # ORT's pybind errors (InvalidArgument, Fail, ...) share no public base
            shapes = ", ".join(f"{name} {tuple(x.shape)}" for name, x in feeds.items())
            raise BackendError(f"ONNX Runtime cannot run {self.path} on {shapes}: {exc}") from exc

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        outputs = self.run_feeds(self.feeds(*inputs))
        return [o.astype(np.float32, copy=False) for o in outputs]
