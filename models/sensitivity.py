"""Where an int8 static (QDQ) file loses against its float parent, tensor by tensor.

ONNX Runtime's own debugging tools do the matching (onnxruntime.quantization.qdq_loss_debug): both graphs
are augmented to save every node's output, run on the same inputs, and each quantized activation is compared
before and after its Q/DQ pair (the error its own quantization adds) and with the float graph's tensor of the
same name (the error accumulated up to there), as signal-to-quantization-noise ratios in dB. Weights are
compared with their dequantized values. One more figure per tensor says why a tensor loses: a uint8
activation has one scale for all its channels, so a channel whose values span fewer than a few steps of that
scale is all but erased ("crushed"). This module knows graphs, not what their tensors mean.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from models.derive import prepare

CRUSHED_LEVELS = 4  # a channel spanning fewer uint8 steps than this carries little of what it did


@dataclass(frozen=True)
class TensorError:
    tensor: str
    node: str  # the node that writes it
    op_type: str
    depth: float  # where that node sits in the graph, 0 (input) .. 1 (output)
    own_db: float  # SQNR of its own quantization: before against after its Q/DQ pair
    accumulated_db: float  # SQNR against the float graph's tensor: every quantization before it included
    crushed: float | None  # share of its channels (axis 1) spanning fewer than CRUSHED_LEVELS steps
    median_levels: float | None  # how many steps the median channel spans


@dataclass(frozen=True)
class WeightError:
    weight: str
    node: str
    op_type: str
    db: float


@dataclass(frozen=True)
class LayerReport:
    tensors: tuple[TensorError, ...]  # in graph order
    weights: tuple[WeightError, ...]
    output_db: float  # SQNR of the graph's outputs, int8 against float
    inputs: int  # how many inputs it was measured on

    def ranked(self) -> list[TensorError]:
        """Most suspect first: the most channels crushed, then the noisiest quantization of its own."""
        return sorted(self.tensors, key=lambda t: (-(t.crushed or 0.0), t.own_db))


def _sqnr(reference: np.ndarray, other: np.ndarray) -> float:
    noise = float(np.linalg.norm(reference - other))
    return 20 * math.log10(max(float(np.linalg.norm(reference)), 1e-12) / max(noise, 1e-12))


class _Inputs:
    """The iterator protocol collect_activations reads."""

    def __init__(self, name: str, tensors: list[np.ndarray]):
        self._feeds = iter([{name: np.asarray(t, np.float32)} for t in tensors])

    def get_next(self):
        return next(self._feeds, None)

    def __iter__(self):
        return self

    def __next__(self):
        feed = self.get_next()
        if feed is None:
            raise StopIteration
        return feed


def _shapes(graph: onnx.GraphProto) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for info in list(graph.value_info) + list(graph.output):
        dims = [d.dim_value if d.HasField("dim_value") else 0 for d in info.type.tensor_type.shape.dim]
        if dims and all(dims):
            shapes[info.name] = tuple(dims)
    return shapes


def _scales(model: onnx.ModelProto) -> dict[str, float]:
    """Each activation's uint8 scale in the QDQ graph (per-tensor; weights' per-channel scales left out)."""
    initializers = {i.name: i for i in model.graph.initializer}
    scales = {}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[1] in initializers:
            scale = numpy_helper.to_array(initializers[node.input[1]])
            if scale.size == 1:
                scales[node.input[0]] = float(scale)
    return scales


def _crushed(runs: list[np.ndarray], shape: tuple[int, ...] | None, scale: float | None):
    if shape is None or scale is None or len(shape) < 2 or scale <= 0:
        return None, None
    try:
        x = np.stack([r.reshape(shape) for r in runs])  # runs, batch, channels, ...
    except ValueError:
        return None, None
    axes = tuple(i for i in range(x.ndim) if i != 2)
    span = np.abs(x).max(axis=axes) / scale
    return float(np.mean(span < CRUSHED_LEVELS)), float(np.median(span))


def layer_report(float_path: Path, qdq_path: Path, inputs: Iterable[np.ndarray]) -> LayerReport:
    """The float parent and its QDQ file run on the same inputs; every quantized activation and weight
    compared."""
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        compute_weight_error,
        create_activation_matching,
        create_weight_matching,
        modify_model_output_intermediate_tensors,
    )

    tensors = [np.asarray(t, np.float32) for t in inputs]
    if not tensors:
        raise ValueError("no inputs to compare the two files on")
    with tempfile.TemporaryDirectory(prefix="mvl-layers-") as tmp:
        folder = Path(tmp)
        prepared = prepare(float_path, folder)
        float_graph = onnx.load(str(prepared))
        qdq_model = onnx.load(str(qdq_path))
        input_name = float_graph.graph.input[0].name
        modify_model_output_intermediate_tensors(str(prepared), str(folder / "float_saved.onnx"))
        modify_model_output_intermediate_tensors(str(qdq_path), str(folder / "qdq_saved.onnx"))
        floats = collect_activations(str(folder / "float_saved.onnx"), _Inputs(input_name, tensors))
        quantized = collect_activations(str(folder / "qdq_saved.onnx"), _Inputs(input_name, tensors))
        errors = compute_activation_error(create_activation_matching(quantized, floats))
        weight_errors = compute_weight_error(create_weight_matching(str(prepared), str(qdq_path)))
    shapes, scales = _shapes(float_graph.graph), _scales(qdq_model)
    nodes = list(float_graph.graph.node)
    rows, readers = [], {}
    for position, node in enumerate(nodes):
        for name in node.input:
            readers.setdefault(name, node)
        for name in node.output:
            if name in errors and "xmodel_err" in errors[name]:
                crushed, levels = _crushed(floats.get(name, []), shapes.get(name), scales.get(name))
                rows.append(TensorError(name, node.name, node.op_type, position / max(1, len(nodes) - 1),
                                        float(errors[name]["qdq_err"]), float(errors[name]["xmodel_err"]),
                                        crushed, levels))
    weights = tuple(WeightError(name, readers[name].name if name in readers else "", readers[name].op_type
                                if name in readers else "", float(db)) for name, db in weight_errors.items())
    outputs = [o.name for o in float_graph.graph.output if o.name in floats and o.name in quantized]
    output_db = min((_sqnr(np.concatenate(floats[o]), np.concatenate(quantized[o])) for o in outputs),
                    default=float("nan"))
    return LayerReport(tuple(rows), weights, output_db, len(tensors))
