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


class _Energy:
    """The SQNR of tensors concatenated over runs, as ONNX Runtime's debugging tools compute it, from running
    sums: ||reference|| / ||reference - other|| needs only the two sums of squares, not the runs themselves."""

    EPS = float(np.finfo(float).eps)

    def __init__(self):
        self.signal = 0.0
        self.noise = 0.0

    def add(self, reference: np.ndarray, other: np.ndarray) -> None:
        reference = np.asarray(reference, np.float64).ravel()
        difference = reference - np.asarray(other, np.float64).ravel()
        self.signal += float(reference @ reference)
        self.noise += float(difference @ difference)

    @property
    def db(self) -> float:
        return 20 * math.log10(max(math.sqrt(self.signal), self.EPS) / max(math.sqrt(self.noise), self.EPS))


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


def _channel_span(run: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray | None:
    """A run's largest magnitude per channel (axis 1 of the tensor's shape), or None where the shape is not
    known or does not fit."""
    if shape is None or len(shape) < 2:
        return None
    try:
        x = run.reshape(shape)
    except ValueError:
        return None
    return np.abs(x).max(axis=tuple(i for i in range(x.ndim) if i != 1))


def _crushed(span: np.ndarray | None, scale: float | None):
    """Share of channels spanning fewer than CRUSHED_LEVELS uint8 steps, and the median channel's steps."""
    if span is None or scale is None or scale <= 0:
        return None, None
    levels = span / scale
    return float(np.mean(levels < CRUSHED_LEVELS)), float(np.median(levels))


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
    """The SQNR of the graph's outputs against the float graph's (`floats`: its outputs per input), the graph
    run as written."""
    from models.backends.onnxruntime import OnnxRuntimeBackend

    onnx.save(model, str(path))
    backend = OnnxRuntimeBackend(path, 1, as_written=True)
    energies = {o.name: _Energy() for o in backend.outputs if o.name in floats}
    for k, tensor in enumerate(inputs):
        for output, value in zip(backend.outputs, backend.run(tensor)):
            if output.name in energies:
                energies[output.name].add(floats[output.name][k], value)
    return min((e.db for e in energies.values()), default=float("nan"))


def _saved(session, input_name: str, tensor: np.ndarray) -> dict[str, list[np.ndarray]]:
    """One run of a graph augmented to save every tensor: {tensor name: [its value]}, as collect_activations
    gives it for one input."""
    from onnxruntime.quantization.qdq_loss_debug import _TENSOR_SAVE_POSTFIX

    values = session.run(None, {input_name: tensor})
    return {o.name[: -len(_TENSOR_SAVE_POSTFIX)]: [v] for o, v in zip(session.get_outputs(), values)
            if o.name.endswith(_TENSOR_SAVE_POSTFIX)}


def layer_report(float_path: Path, qdq_path: Path, inputs: Iterable[np.ndarray]) -> LayerReport:
    """The float parent and its QDQ file run on the same inputs; every quantized activation and weight
    compared. One input at a time: what is kept over the inputs is running sums and per-channel spans, so the
    memory is one run of each graph (every tensor of several runs kept together took gigabytes on a
    ResNet-50)."""
    import onnxruntime as ort
    from onnxruntime.quantization.qdq_loss_debug import (
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
        shapes, scales = _shapes(float_graph.graph), _scales(qdq_model)
        graph_outputs = [o.name for o in float_graph.graph.output]
        modify_model_output_intermediate_tensors(str(prepared), str(folder / "float_saved.onnx"))
        modify_model_output_intermediate_tensors(str(qdq_path), str(folder / "qdq_saved.onnx"))
        options = ort.SessionOptions()  # as collect_activations runs them: the graphs as written
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sessions = [ort.InferenceSession(str(folder / name), options, providers=["CPUExecutionProvider"])
                    for name in ("float_saved.onnx", "qdq_saved.onnx")]
        own, accumulated, spans = {}, {}, {}
        float_outputs, output_energies = {}, {}  # the float outputs per input: the split runs on them below
        for tensor in tensors:
            floats, quantized = (_saved(session, input_name, tensor) for session in sessions)
            for name, match in create_activation_matching(quantized, floats).items():
                (post,) = match["post_qdq"]
                own.setdefault(name, _Energy()).add(match["pre_qdq"][0], post)
                if "float" in match:
                    accumulated.setdefault(name, _Energy()).add(match["float"][0], post)
                    span = _channel_span(match["float"][0], shapes.get(name))
                    if span is not None:
                        spans[name] = span if name not in spans else np.maximum(spans[name], span)
            for name in graph_outputs:
                if name in floats and name in quantized:
                    float_outputs.setdefault(name, []).append(floats[name][0])
                    output_energies.setdefault(name, _Energy()).add(floats[name][0], quantized[name][0])
            del floats, quantized
        del sessions
        weight_errors = compute_weight_error(create_weight_matching(str(prepared), str(qdq_path)))
        split = (_outputs_db(weights_alone(qdq_model), folder / "weights_alone.onnx", tensors, float_outputs),
                 _outputs_db(activations_alone(qdq_model, float_graph), folder / "activations_alone.onnx", tensors,
                             float_outputs))
    nodes = list(float_graph.graph.node)
    rows, readers = [], {}
    for position, node in enumerate(nodes):
        for name in node.input:
            readers.setdefault(name, node)
        for name in node.output:
            if name in accumulated:
                crushed, levels = _crushed(spans.get(name), scales.get(name))
                rows.append(TensorError(name, node.name, node.op_type, position / max(1, len(nodes) - 1),
                                        own[name].db, accumulated[name].db, crushed, levels))
    weights = tuple(WeightError(name, readers[name].name if name in readers else "", readers[name].op_type
                                if name in readers else "", float(db)) for name, db in weight_errors.items())
    output_db = min((e.db for e in output_energies.values()), default=float("nan"))
    return LayerReport(tuple(rows), weights, output_db, len(tensors), *split)
