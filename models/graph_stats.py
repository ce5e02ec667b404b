"""Parameters and multiply-adds of a model file, by layer type, read from the graph itself.

Layer types follow the MobileNet paper's Table 2: 1x1 convolution, depthwise convolution, full
convolution (any other kernel or grouping) and fully connected. A convolution whose kernel covers its
whole input and whose output is 1x1 is counted as fully connected: that is how TensorFlow MobileNets
write their classifier. Parameters are the weights and biases of those layers plus any other float
constants (listed as "other"); quantization scales, zero points and shape constants are not parameters.
Multiply-adds are for one image (batch 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.probe import attribute

LAYER_TYPES = ("conv_1x1", "depthwise", "conv_full", "fully_connected")
LAYER_NAMES = {
    "conv_1x1": "1x1 convolution",
    "depthwise": "depthwise convolution",
    "conv_full": "full convolution",
    "fully_connected": "fully connected",
    "other": "other",
}


class GraphStatsError(ValueError):
    """The graph cannot be measured; the message says which layer and why."""


@dataclass(frozen=True)
class LayerTypeStats:
    layer_type: str
    layers: int
    macs: int
    params: int


@dataclass(frozen=True)
class GraphStats:
    file_bytes: int
    params: int
    macs: int
    by_type: tuple[LayerTypeStats, ...]  # LAYER_TYPES then "other" (parameters only)
    # the layers' parameters by how the file stores their weights ("fp32", "fp16", "int8", ...), most first
    weight_types: tuple[tuple[str, int], ...] = ()

    @property
    def stored_as(self) -> str:
        """How the layers' weights are stored: 'int8', or a mix in words ('int8 97 %, fp32 3 %')."""
        total = sum(n for _, n in self.weight_types)
        if len(self.weight_types) <= 1:
            return self.weight_types[0][0] if self.weight_types else ""
        return ", ".join(f"{kind} {100 * n / total:.0f} %" if n >= total / 200 else f"{kind} <1 %"
                         for kind, n in self.weight_types)

    def share(self, layer_type: str) -> tuple[float, float]:
        """(share of multiply-adds, share of parameters) of a layer type, 0..1."""
        row = next(r for r in self.by_type if r.layer_type == layer_type)
        return (row.macs / self.macs if self.macs else 0.0, row.params / self.params if self.params else 0.0)


class _Tally:
    def __init__(self) -> None:
        self.rows = {t: [0, 0, 0] for t in LAYER_TYPES}
        self.stored: dict[str, int] = {}

    def add(self, layer_type: str, macs: int, params: int, stored_as: str) -> None:
        row = self.rows[layer_type]
        row[0] += 1
        row[1] += int(macs)
        row[2] += int(params)
        self.stored[stored_as] = self.stored.get(stored_as, 0) + int(params)

    def stats(self, file_bytes: int, other_params: int) -> GraphStats:
        by_type = tuple(LayerTypeStats(t, *self.rows[t]) for t in LAYER_TYPES)
        by_type += (LayerTypeStats("other", 0, 0, int(other_params)),)
        return GraphStats(
            file_bytes=file_bytes,
            params=sum(r.params for r in by_type),
            macs=sum(r.macs for r in by_type),
            by_type=by_type,
            weight_types=tuple(sorted(self.stored.items(), key=lambda kv: -kv[1])),
        )


def _number_format(name: str) -> str:
    """'float32' -> 'fp32', 'uint8' -> 'int8' (8-bit integers either way, as the cards name them), 'bfloat16' as
    it is."""
    name = name.lower()
    if name.startswith("float"):
        return "fp" + name.removeprefix("float")
    return name.removeprefix("u") if name in ("uint8", "uint4") else name


def conv_type(kernel_h: int, kernel_w: int, in_channels: int, groups: int, in_hw: tuple[int, int], out_hw: tuple[int, int]) -> str:
    if out_hw == (1, 1) and (kernel_h, kernel_w) == tuple(in_hw) and groups == 1:
        return "fully_connected"
    if groups > 1 and groups == in_channels:
        return "depthwise"
    if (kernel_h, kernel_w) == (1, 1) and groups == 1:
        return "conv_1x1"
    return "conv_full"


# -- ONNX ------------------------------------------------------------------------------------------

# op type -> (index of the data input, index of the weight input, index of the bias input or None)
_ONNX_CONV = {"Conv": (0, 1, 2), "ConvInteger": (0, 1, None), "QLinearConv": (0, 3, 8)}
_ONNX_MATMUL = {"Gemm": (0, 1, 2), "MatMul": (0, 1, None), "MatMulInteger": (0, 1, None), "QLinearMatMul": (0, 3, None)}
_PASS_THROUGH = ("DequantizeLinear", "Cast", "Identity", "Transpose")
_QUANT_PARAM_INPUTS = {"QuantizeLinear": (1, 2), "DequantizeLinear": (1, 2), "QLinearConv": (1, 2, 4, 5, 6, 7),
                       "QLinearMatMul": (1, 2, 4, 5, 6, 7), "ConvInteger": (2, 3), "MatMulInteger": (2, 3),
                       "DynamicQuantizeLinear": ()}


def _run_shapes(path: Path, model, input_shape: tuple[int, ...] | None) -> dict[str, tuple[int, ...]]:
    """Shapes of every node output, from one run on a zero input: for graphs whose shapes are computed
    at run time (e.g. TensorFlow 'same' padding exported as Pad of a computed size)."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    names = [out for node in probe.graph.node if node.op_type not in ("Constant",) for out in node.output
             if out and out not in known]
    probe.graph.output.extend(onnx.ValueInfoProto(name=name) for name in names)
    try:
        session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
        feeds = {}
        for i, spec in enumerate(session.get_inputs()):
            dims = tuple(input_shape) if (input_shape and i == 0) else tuple(
                d if isinstance(d, int) and d > 0 else 1 for d in spec.shape)
            dtype = {"tensor(float16)": np.float16, "tensor(uint8)": np.uint8, "tensor(int8)": np.int8,
                     "tensor(int64)": np.int64}.get(spec.type, np.float32)
            feeds[spec.name] = np.zeros(dims, dtype)
        values = session.run(None, feeds)
    except Exception as exc:  # ORT's own error types
        raise GraphStatsError(f"{path.name}: shapes could not be found by running the graph: {exc}") from exc
    return {o.name: tuple(v.shape) for o, v in zip(session.get_outputs(), values) if hasattr(v, "shape")}


def onnx_stats(path: Path | str, input_shape: tuple[int, ...] | None = None) -> GraphStats:
    """`input_shape` fixes a dynamic input (batch 1) where the graph leaves it open."""
    import onnx

    path = Path(path)
    model = onnx.load(str(path))
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception as exc:  # onnx raises its own error types
        raise GraphStatsError(f"shape inference failed on {path.name}: {exc}") from exc
    graph = inferred.graph
    inits = {t.name: t for t in graph.initializer}
    constants = {n.output[0]: n.attribute[0].t for n in graph.node if n.op_type == "Constant" and n.attribute
                 and n.attribute[0].name == "value"}
    producers = {out: node for node in graph.node for out in node.output}
    shapes: dict[str, tuple[int, ...]] = {}
    for info in list(graph.input) + list(graph.value_info) + list(graph.output):
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims)

    def constant(name: str):
        """The initializer behind an input, through dequantize / cast / identity / transpose nodes."""
        seen = 0
        while name not in inits and name not in constants and name in producers and seen < 4:
            node = producers[name]
            if node.op_type not in _PASS_THROUGH:
                return None
            name, seen = node.input[0], seen + 1
        return inits.get(name) or constants.get(name)

    tally = _Tally()
    counted: set[str] = set()
    quant_params: set[str] = set()
    for node in graph.node:
        for i in _QUANT_PARAM_INPUTS.get(node.op_type, ()):
            if i < len(node.input):
                quant_params.add(node.input[i])
        spec = _ONNX_CONV.get(node.op_type) or _ONNX_MATMUL.get(node.op_type)
        if spec is None:
            continue
        x_index, w_index, b_index = spec
        weight = constant(node.input[w_index]) if w_index < len(node.input) else None
        if weight is None:
            continue  # a product of two activations has no parameters (attention); not a layer of Table 2
        bias = constant(node.input[b_index]) if b_index is not None and b_index < len(node.input) and node.input[b_index] else None
        params = int(np.prod(weight.dims)) + (int(np.prod(bias.dims)) if bias is not None else 0)
        counted.add(weight.name)
        if bias is not None:
            counted.add(bias.name)
        out_shape = shapes.get(node.output[0])
        if node.op_type in _ONNX_CONV:
            if out_shape is None or len(out_shape) != 4 or min(out_shape[1:]) < 1:
                shapes.update(_run_shapes(path, model, input_shape))
                out_shape = shapes.get(node.output[0])
            if out_shape is None or len(out_shape) != 4:
                raise GraphStatsError(f"{path.name}: the output shape of {node.op_type} {node.name!r} is unknown")
            c_out, k_h, k_w = weight.dims[0], weight.dims[2], weight.dims[3]
            groups = attribute(node, "group", 1)
            in_shape = shapes.get(node.input[x_index], (-1, -1, -1, -1))
            in_channels = weight.dims[1] * groups
            macs = c_out * out_shape[2] * out_shape[3] * weight.dims[1] * k_h * k_w
            layer = conv_type(k_h, k_w, in_channels, groups, tuple(in_shape[2:4]), tuple(out_shape[2:4]))
        else:
            transposed = node.op_type == "Gemm" and bool(attribute(node, "transB", 0))
            in_features = weight.dims[-1] if transposed else weight.dims[-2] if len(weight.dims) > 1 else weight.dims[0]
            out_elements = int(np.prod([d for d in out_shape if d > 0])) if out_shape else int(np.prod(weight.dims))
            macs = out_elements * in_features
            layer = "fully_connected"
        tally.add(layer, macs, params, _number_format(onnx.helper.tensor_dtype_to_np_dtype(weight.data_type).name))
    other = sum(
        int(np.prod(t.dims)) for name, t in inits.items()
        if name not in counted and name not in quant_params and len(t.dims) >= 1 and int(np.prod(t.dims)) > 1
        and t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.INT8,
                            onnx.TensorProto.UINT8)  # int64 initializers are shapes and indices
    )
    return tally.stats(path.stat().st_size, other)


# -- TFLite ----------------------------------------------------------------------------------------


def tflite_stats(path: Path | str) -> GraphStats:
    from ai_edge_litert.interpreter import Interpreter

    path = Path(path)
    try:
        interpreter = Interpreter(model_path=str(path))
    except Exception as exc:  # LiteRT's own error text
        raise GraphStatsError(f"LiteRT cannot read {path.name}: {exc}") from exc
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    tally = _Tally()
    counted: set[int] = set()
    ops = interpreter._get_ops_details()  # the flatbuffer's operators, with their tensor indices
    produced = {int(i) for op in ops for i in op["outputs"]} | {d["index"] for d in interpreter.get_input_details()}

    # fp16 and sparse files keep a layer's weights as a constant that DEQUANTIZE / DENSIFY expand at load
    unpacked = {int(op["outputs"][0]): int(op["inputs"][0]) for op in ops if op["op_name"] in ("DEQUANTIZE", "DENSIFY")}

    def shape(index: int) -> tuple[int, ...]:
        return tuple(int(d) for d in tensors[index]["shape"])

    def stored(index: int) -> int:
        """The constant behind a layer's input, through DEQUANTIZE / DENSIFY."""
        for _ in range(4):
            index = unpacked.get(index, index)
        return index

    for op in ops:
        name, inputs, outputs = op["op_name"], [int(i) for i in op["inputs"]], [int(i) for i in op["outputs"]]
        if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        weight, bias = inputs[1], (inputs[2] if len(inputs) > 2 and inputs[2] >= 0 else None)
        w_shape, out = shape(weight), shape(outputs[0])
        params = int(np.prod(w_shape)) + (int(np.prod(shape(bias))) if bias is not None else 0)
        counted.update(stored(i) for i in (weight, bias) if i is not None)
        if name == "FULLY_CONNECTED":
            layer, macs = "fully_connected", int(np.prod(out[:-1])) * w_shape[0] * w_shape[1]
        elif name == "CONV_2D":  # filter [out, kh, kw, in], NHWC
            c_out, k_h, k_w, c_in = w_shape
            macs = c_out * out[1] * out[2] * k_h * k_w * c_in
            layer = conv_type(k_h, k_w, c_in, 1, shape(inputs[0])[1:3], out[1:3])
        else:  # DEPTHWISE_CONV_2D filter [1, kh, kw, out]
            _, k_h, k_w, c_out = w_shape
            c_in = shape(inputs[0])[3]
            macs = c_out * out[1] * out[2] * k_h * k_w
            layer = conv_type(k_h, k_w, c_in, c_in, shape(inputs[0])[1:3], out[1:3])
        tally.add(layer, macs, params, _number_format(np.dtype(tensors[stored(weight)]["dtype"]).name))
    other = sum(
        int(np.prod(shape(i))) for i, t in tensors.items()
        if i not in produced and i not in counted and len(t["shape"]) >= 1 and int(np.prod(shape(i))) > 1
        and np.dtype(t["dtype"]).name in ("float32", "float16", "int8", "uint8")  # int32: shapes, biases
    )
    return tally.stats(path.stat().st_size, other)


def graph_stats(path: Path | str, runtime: str, input_shape: tuple[int, ...] | None = None) -> GraphStats:
    if runtime == "onnx":
        return onnx_stats(path, input_shape)
    if runtime == "tflite":
        return tflite_stats(path)
    raise GraphStatsError(f"no graph reader for runtime {runtime!r}")


# -- memory ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorMemory:
    """What a graph's tensors need for one image, from the shapes alone (nothing is run)."""

    largest_bytes: int
    largest: str  # the tensor, and the operator that makes it
    total_bytes: int  # the weights plus the peak of the activations alive at once, in graph order
    unknown: int  # tensors whose shape could not be worked out statically


_ONNX_ITEMSIZE = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2}


def _peak_activations(graph, sizes: dict[str, int]) -> int:
    """Walk the nodes in order: a tensor lives from its node until its last reader (as a runtime frees it)."""
    last_use = {name: i for i, node in enumerate(graph.node) for name in node.input}
    outputs = {o.name for o in graph.output}
    live: dict[str, int] = {}
    peak = 0
    for i, node in enumerate(graph.node):
        for name in node.output:
            live[name] = sizes.get(name, 0)
        peak = max(peak, sum(live.values()))
        for name in node.input:
            if last_use.get(name) == i and name not in outputs:
                live.pop(name, None)
    return peak


def onnx_memory(path: Path | str, input_shape: tuple[int, ...] | None = None) -> TensorMemory:
    """Shape inference with data propagation (so shapes computed from constants are known), the first
    input fixed to `input_shape` where the graph leaves it open."""
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf's own decode errors
        raise GraphStatsError(f"{Path(path).name} is not an ONNX graph: {exc}") from exc
    if input_shape and model.graph.input:
        dims = model.graph.input[0].type.tensor_type.shape.dim
        for dim, value in zip(dims, input_shape):
            if not dim.HasField("dim_value"):
                dim.Clear()
                dim.dim_value = value
    try:
        graph = onnx.shape_inference.infer_shapes(model, data_prop=True).graph
    except Exception as exc:  # onnx raises its own error types
        raise GraphStatsError(f"shape inference failed on {Path(path).name}: {exc}") from exc
    producers = {out: node.op_type for node in graph.node for out in node.output}
    sizes, largest, largest_name, unknown = {}, 0, "", 0
    for info in list(graph.value_info) + list(graph.output):
        tensor = info.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
        if not tensor.HasField("shape") or min(dims, default=1) < 0:
            unknown += 1
            continue
        sizes[info.name] = int(np.prod(dims, dtype=np.float64)) * _ONNX_ITEMSIZE.get(tensor.elem_type, 4)
        if sizes[info.name] > largest:
            largest, largest_name = sizes[info.name], f"{info.name} ({producers.get(info.name, 'output')}, {dims})"
    weights = sum(int(np.prod(t.dims, dtype=np.float64)) * _ONNX_ITEMSIZE.get(t.data_type, 4)
                  for t in graph.initializer)
    return TensorMemory(largest, largest_name, weights + _peak_activations(graph, sizes), unknown)


def tflite_memory(path: Path | str) -> TensorMemory:
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=str(path))  # reads the flatbuffer; allocates no tensors yet
    except Exception as exc:  # LiteRT's own error text
        raise GraphStatsError(f"LiteRT cannot read {Path(path).name}: {exc}") from exc
    largest, largest_name, total = 0, "", 0
    for t in interpreter.get_tensor_details():
        size = int(np.prod(t["shape"], dtype=np.float64)) * np.dtype(t["dtype"]).itemsize
        total += size
        if size > largest:
            largest, largest_name = size, f"{t['name']} {[int(d) for d in t['shape']]}"
    return TensorMemory(largest, largest_name, total, 0)


def graph_memory(path: Path | str, runtime: str, input_shape: tuple[int, ...] | None = None) -> TensorMemory:
    if runtime == "onnx":
        return onnx_memory(path, input_shape)
    if runtime == "tflite":
        return tflite_memory(path)
    raise GraphStatsError(f"no graph reader for runtime {runtime!r}")
