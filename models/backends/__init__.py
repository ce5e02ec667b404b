"""One backend class per runtime; dispatch on the card's declared runtime, never on tensor shapes."""

from __future__ import annotations

from models.backends.base import Backend, BackendError, TensorSpec


def backend_class(runtime: str) -> type[Backend]:
    # Imported here so that a runtime's library loads only when a card of that runtime is used.
    if runtime == "onnx":
        from models.backends.onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend
    if runtime == "tflite":
        from models.backends.litert import LiteRTBackend

        return LiteRTBackend
    raise BackendError(f"no backend for runtime {runtime!r}; known: onnx, tflite")


__all__ = ["Backend", "BackendError", "TensorSpec", "backend_class"]
