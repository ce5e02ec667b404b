"""Where an int8 static (QDQ) file loses against its float parent, tensor by tensor.

ONNX Runtime's own debugging tools do the matching (onnxruntime.quantization.qdq_loss_debug): both graphs
are augmented to save every node's output, run on the same inputs, and each quantized activation is compared
before and after its Q/DQ pair (the error its own quantization adds) and with the float graph's tensor of the
same name (the error accumulated up to there), as signal-to-quantization-noise ratios in dB. Weights are
compared with their dequantized values. One more figure per tensor says why a tensor loses: a uint8
activation has one scale for all its channels, so a channel whose values span fewer than a few steps of that
scale is all but erased ("crushed"). Two more graphs tell whether the loss lies in the weights or in the
activations: the QDQ graph with its activations' Q/DQ pairs taken out (its int8 weights, float activations),
and the QDQ graph with the parent's float weights and biases (its uint8 activations, float weights). This
module knows graphs, not what their tensors mean.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

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
    weights_alone_db: float  # the outputs' SQNR with the int8 file's weights and float activations
    activations_alone_db: float  # ... with its quantized activations and the float weights

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


QUANTIZED_SUFFIX = "_quantized"  # how ONNX Runtime's quantizer names a weight's int8 copy


def _copy(model: onnx.ModelProto, nodes: list[onnx.NodeProto],
          initializers: list[onnx.TensorProto] = ()) -> onnx.ModelProto:
    """The model with these nodes, less those whose outputs nothing reads any more (one pass: the Q nodes a
    removed DQ read), and of its initializers (and these) the ones they read."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    outputs = {o.name for o in model.graph.output}
    read = {name for n in nodes for name in n.input} | outputs
    nodes = [n for n in nodes if set(n.output) & read]
    read = {name for n in nodes for name in n.input} | outputs
    kept = [i for i in list(model.graph.initializer) + list(initializers) if i.name in read]
    del out.graph.node[:], out.graph.initializer[:]
    out.graph.node.extend(nodes)
    out.graph.initializer.extend(kept)
    return out


def weights_alone(qdq: onnx.ModelProto) -> onnx.ModelProto:
    """The QDQ graph without its activations' rounding: int8-rounded weights, float activations. Each Q/DQ
    pair becomes a Clip to its range, since the quantizer lets that range stand in for a ReLU or ReLU6 it
    removed."""
    constants = {i.name: i for i in qdq.graph.initializer}
    producers = {o: n for n in qdq.graph.node for o in n.output}
    nodes, bounds = [], []
    for node in qdq.graph.node:
        source = producers.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        if source is not None and source.op_type == "QuantizeLinear" and source.input[0] not in constants:
            scale = numpy_helper.to_array(constants[source.input[1]]).astype(np.float32)
            zero = (numpy_helper.to_array(constants[source.input[2]]) if len(source.input) > 2
                    else np.zeros((), np.uint8))  # no zero point: uint8, 0
            levels = np.iinfo(zero.dtype)
            low, high = (levels.min - zero.astype(np.float32)) * scale, (levels.max - zero.astype(np.float32)) * scale
            bounds += [numpy_helper.from_array(low.reshape(()), f"{node.name}_low"),
                       numpy_helper.from_array(high.reshape(()), f"{node.name}_high")]
            node = helper.make_node("Clip", [source.input[0], f"{node.name}_low", f"{node.name}_high"],
                                    list(node.output), name=node.name)
        nodes.append(node)
    return _copy(qdq, nodes, bounds)


def activations_alone(qdq: onnx.ModelProto, prepared: onnx.ModelProto) -> onnx.ModelProto:
    """The QDQ graph with the float parent's weights and biases (`prepared`: the graph it was quantized from)
    in place of their dequantized int8 copies: quantized activations, float weights."""
    constants = {i.name for i in qdq.graph.initializer}
    floats = {i.name: i for i in prepared.graph.initializer}
    nodes, restored = [], []
    for node in qdq.graph.node:
        name = node.input[0][: -len(QUANTIZED_SUFFIX)]
        if (node.op_type == "DequantizeLinear" and node.input[0] in constants
                and node.input[0].endswith(QUANTIZED_SUFFIX) and name in floats):
            # the float values under the name the dequantized copy had (for a bias, often the float name)
            restored.append(numpy_helper.from_array(numpy_helper.to_array(floats[name]), node.output[0]))
        else:
            nodes.append(node)
    return _copy(qdq, nodes, restored)


def _outputs_db(model: onnx.ModelProto, path: Path, inputs: list[np.ndarray],
                floats: dict[str, list[np.ndarray]]) -> float:
    """The SQNR of the graph's outputs against the float graph's, the graph run as written."""
    from models.backends.onnxruntime import OnnxRuntimeBackend

    onnx.save(model, str(path))
    backend = OnnxRuntimeBackend(path, 1, as_written=True)
    runs = [backend.run(t) for t in inputs]
    return min((_sqnr(np.concatenate(floats[o.name]).ravel(), np.concatenate([r[i].ravel() for r in runs]))
                for i, o in enumerate(backend.outputs) if o.name in floats), default=float("nan"))


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
        split = (_outputs_db(weights_alone(qdq_model), folder / "weights_alone.onnx", tensors, floats),
                 _outputs_db(activations_alone(qdq_model, float_graph), folder / "activations_alone.onnx", tensors,
                             floats))
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
    return LayerReport(tuple(rows), weights, output_db, len(tensors), *split)
