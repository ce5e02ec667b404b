"""ONNX Runtime on the CPU execution provider."""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort

from models.backends.base import Backend, BackendError, TensorSpec

_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8", "tensor(int8)": "int8"}


# A batch is run in calls of about this much input: larger calls fall out of the CPU's caches (measured at one
# thread: MTCNN's R-Net on 264 crops 22 ms in one call, 13 ms in calls of 18; O-Net on 64 crops 23.6 ms, 18.8 ms
# in calls of 4; MobileFaceNet, 150 KB a face, runs one face a call: 4.7-5.1 ms a face, against 4.7-5.7 with 31
# faces in one call, from run to run).
CALL_BYTES = 128 * 1024


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """Threads that run the parts of split batches (ORT releases the GIL while it runs)."""
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="ort-parts")


def _prepared(path, open_batch: bool) -> str | bytes:
    """The file as ORT should run it: PRelu rewritten for speed (same outputs), the batch opened if asked."""
    import onnx

    from models.backends import onnx_rewrites

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # not readable here: ORT gives the error about the file itself
        return str(path)
    if any(i.data_location == onnx.TensorProto.EXTERNAL for i in model.graph.initializer):
        return str(path)  # external weights load from beside the file: ORT reads it by path
    changed = onnx_rewrites.fast_prelu(model)
    if open_batch:
        onnx_rewrites.open_batch(model)
    return model.SerializeToString() if changed or open_batch else str(path)


# A graph run as written: without this, ONNX Runtime quantizes float weights it finds between Q/DQ pairs
# itself (per tensor: its WeightBiasQuantization), so a graph meant to hold float weights would not.
QDQ_AS_WRITTEN = ("session.disable_quant_qdq", "1")


def _session(model: str | bytes, threads: int, as_written: bool = False) -> ort.InferenceSession:
    options = ort.SessionOptions()
    if as_written:
        options.add_session_config_entry(*QDQ_AS_WRITTEN)
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle pool threads would otherwise spin and take cores from the other requests' sessions.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class OnnxRuntimeBackend(Backend):
    """InferenceSession.run is thread-safe, so one session serves concurrent requests.

    A batch (where the file takes one) is split across the threads, each part on a one-thread session of its
    own, rather than run by one session's intra-op threads: small convolutions keep two cores busier so
    (about 1.5x the faces per second of a two-thread session on a batch of MobileFaceNet crops)."""

    runtime = "onnx"

    def __init__(self, path, threads: int, open_batch: bool = False, as_written: bool = False):
        super().__init__(path, threads)
        try:
            model = _prepared(path, open_batch)
            try:
                self._session = _session(model, threads, as_written)
            except Exception:
                if not open_batch:
                    raise
                # some derived graphs fix the batch deeper inside (a quantized bias add): run them as they are
                model = _prepared(path, False)
                self._session = _session(model, threads, as_written)
        except Exception as exc:  # ORT raises its own untyped errors for bad files
            raise BackendError(f"ONNX Runtime cannot load {path}: {exc}") from exc
        batch = self._session.get_inputs()[0].shape[0] if self._session.get_inputs() else 1
        self._open_batch = not isinstance(batch, int)
        self._parts = _session(model, 1, as_written) if threads > 1 and self._open_batch else None
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

    def run_feeds(self, feeds: dict[str, np.ndarray], session: ort.InferenceSession | None = None) -> list[np.ndarray]:
        try:
            return (session or self._session).run(None, feeds)
        except Exception as exc:  # ORT's pybind errors (InvalidArgument, Fail, ...) share no public base
            shapes = ", ".join(f"{name} {tuple(x.shape)}" for name, x in feeds.items())
            raise BackendError(f"ONNX Runtime cannot run {self.path} on {shapes}: {exc}") from exc

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        feeds = self.feeds(*inputs)
        rows = len(next(iter(feeds.values()))) if feeds else 0
        if not self._open_batch or len(feeds) != 1 or rows < 2:
            outputs = self.run_feeds(feeds)
        elif self._parts is not None and rows >= 2 * self.threads:
            outputs = self._split_run(feeds, rows)
        else:
            outputs = self._run_in_calls(feeds, self._session)
        return [o.astype(np.float32, copy=False) for o in outputs]

    def _run_in_calls(self, feeds: dict[str, np.ndarray], session: ort.InferenceSession) -> list[np.ndarray]:
        """One input's rows in calls of about CALL_BYTES each (rows of an open batch are independent)."""
        (name, x), = feeds.items()
        step = max(1, CALL_BYTES // max(1, x[0].nbytes))
        if len(x) <= step:
            return self.run_feeds(feeds, session)
        results = [self.run_feeds({name: x[i:i + step]}, session) for i in range(0, len(x), step)]
        return [np.concatenate(group) for group in zip(*results)]

    def _split_run(self, feeds: dict[str, np.ndarray], rows: int) -> list[np.ndarray]:
        """The rows split across the threads, each part on the one-thread session (in cache-sized calls)."""
        (name, x), = feeds.items()
        parts = np.array_split(np.arange(rows), self.threads)
        results = list(_pool().map(lambda part: self._run_in_calls({name: x[part]}, self._parts), parts))
        return [np.concatenate(group) for group in zip(*results)]
