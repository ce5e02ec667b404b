"""A float graph run with some of its inner tensors exposed, each reduced per channel on every input: what the
int8 recipes measure before they change a graph (activation ranges, mean activations); and a node's attributes."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import onnx


def per_channel(model: onnx.ModelProto, names: list[str], inputs: Iterable[np.ndarray],
                reduce: Callable[[np.ndarray], np.ndarray]) -> dict[str, np.ndarray]:
    """Per named tensor, [inputs, channels]: `reduce` of its value (channels on axis 1) on each input."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    exposed = {o.name for o in model.graph.output}
    probe.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                              for name in names if name not in exposed)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    input_name = model.graph.input[0].name
    rows: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for tensor in inputs:
        for name, value in zip(names, session.run(names, {input_name: np.asarray(tensor, np.float32)})):
            rows[name].append(reduce(value))
    return {name: np.stack(values) for name, values in rows.items()}


def channel_axes(value: np.ndarray) -> tuple[int, ...]:
    """Every axis but the channels' (1)."""
    return tuple(i for i in range(value.ndim) if i != 1)


def attribute(node: onnx.NodeProto, name: str, default=None):
    """The value of a node's attribute, or `default` where the node leaves it unset."""
    return next((onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)
