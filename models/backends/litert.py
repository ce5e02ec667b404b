"""LiteRT (TFLite) through ai-edge-litert, with its default XNNPACK CPU delegate.

uint8/int8 tensors are quantized on the way in and dequantized on the way out with the tensor's own
(scale, zero point), so callers only see real values.
"""

from __future__ import annotations

import threading

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from models.backends.base import Backend, BackendError, TensorSpec


def _spec(detail: dict) -> TensorSpec:
    return TensorSpec(detail["name"], tuple(int(d) for d in detail["shape"]), np.dtype(detail["dtype"]).name)


def quantize(x: np.ndarray, dtype: np.dtype, scale: float, zero_point: int) -> np.ndarray:
    info = np.iinfo(dtype)
    q = np.divide(x, np.float32(scale), dtype=np.float32)  # one new buffer, then in place
    q += np.float32(zero_point)
    np.rint(q, out=q)
    np.clip(q, info.min, info.max, out=q)
    return q.astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


class LiteRTBackend(Backend):
    """An Interpreter holds its tensors in place, so calls are serialised by a lock."""

    runtime = "tflite"

    def __init__(self, path, threads: int, open_batch: bool = False):
        super().__init__(path, threads)  # LiteRT resizes its inputs to any batch where the model allows
        try:
            self._interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self._interpreter.allocate_tensors()
        except Exception as exc:  # LiteRT raises ValueError/RuntimeError with its own text
            raise BackendError(f"LiteRT cannot load {path}: {exc}") from exc
        self._lock = threading.Lock()
        self._in = self._interpreter.get_input_details()
        self._out = self._interpreter.get_output_details()

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return tuple(_spec(d) for d in self._in)

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return tuple(_spec(d) for d in self._out)

    def encode(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """Real-valued inputs as the stored tensor types."""
        if len(inputs) != len(self._in):
            raise BackendError(f"{self.path} takes {len(self._in)} inputs, got {len(inputs)}")
        encoded = []
        for detail, x in zip(self._in, inputs):
            dtype = np.dtype(detail["dtype"])
            scale, zero_point = detail["quantization"]
            if dtype.kind in "iu" and scale:
                encoded.append(quantize(x, dtype, scale, zero_point))
            else:
                encoded.append(np.ascontiguousarray(x, dtype=dtype))
        return encoded

    def run_encoded(self, encoded: list[np.ndarray]) -> list[np.ndarray]:
        """Invoke on stored-type inputs; returns stored-type outputs (copies).

        An input of another shape resizes the interpreter first, where the model allows it (fully
        convolutional models such as MTCNN's P-Net); that costs a re-allocation, so callers keep shapes steady.
        """
        with self._lock:
            if any(tuple(x.shape) != tuple(d["shape"]) for d, x in zip(self._in, encoded)):
                self._resize([x.shape for x in encoded])
            for detail, x in zip(self._in, encoded):
                self._interpreter.set_tensor(detail["index"], x)
            self._interpreter.invoke()
            return [self._interpreter.get_tensor(d["index"]) for d in self._out]

    def _resize(self, shapes: list[tuple[int, ...]]) -> None:
        try:
            for detail, shape in zip(self._in, shapes):
                if len(shape) != len(detail["shape"]):
                    raise ValueError(f"rank {len(shape)} where the model has {len(detail['shape'])}")
                self._interpreter.resize_tensor_input(detail["index"], list(shape))
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            names = ", ".join(f"{d['name']} {tuple(d['shape_signature'])}" for d in self._in)
            raise BackendError(f"{self.path}: inputs {names} cannot take shapes {shapes}: {exc}") from exc
        finally:
            self._in = self._interpreter.get_input_details()
            self._out = self._interpreter.get_output_details()

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        raw = self.run_encoded(self.encode(*inputs))
        outputs = []
        for detail, q in zip(self._out, raw):
            scale, zero_point = detail["quantization"]
            outputs.append(dequantize(q, scale, zero_point) if q.dtype.kind in "iu" and scale else q.astype(np.float32))
        return outputs
