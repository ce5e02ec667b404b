"""A small ONNX graph writer for the rebuilds: named constants, nodes, and batch norm folded into convs."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13


def fold_batch_norm(weight: np.ndarray, bias: np.ndarray | None, gamma: np.ndarray, beta: np.ndarray,
                    mean: np.ndarray, inv_std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """conv then batch norm as one conv: w * gamma * inv_std, (b - mean) * gamma * inv_std + beta (float64 math,
    float32 result)."""
    scale = gamma.astype(np.float64) * inv_std.astype(np.float64)
    folded_w = weight.astype(np.float64) * scale.reshape(-1, *([1] * (weight.ndim - 1)))
    b = np.zeros(len(scale)) if bias is None else bias.astype(np.float64)
    folded_b = (b - mean.astype(np.float64)) * scale + beta.astype(np.float64)
    return folded_w.astype(np.float32), folded_b.astype(np.float32)


class GraphWriter:
    """Nodes in order, constants as initializers; names are made unique and stable (same input, same bytes)."""

    def __init__(self, name: str):
        self.name = name
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def _next(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def constant(self, array: np.ndarray, name: str | None = None) -> str:
        name = name or self._next("const")
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], output: str | None = None, **attributes) -> str:
        output = output or self._next(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def conv(self, x: str, weight: np.ndarray, bias: np.ndarray, stride: int = 1,
             pads: tuple[int, int, int, int] = (0, 0, 0, 0), group: int = 1) -> str:
        """pads: top, left, bottom, right (ONNX order is begins then ends)."""
        kernel = list(weight.shape[2:])
        return self.node("Conv", [x, self.constant(weight), self.constant(bias)], kernel_shape=kernel,
                         strides=[stride, stride], pads=list(pads), group=group, dilations=[1, 1])

    def model(self, input_name: str, input_shape: list[int], output: str, output_shape: list[int]) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, self.name,
            [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, input_shape)],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, output_shape)],
            self.initializers,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="mobile-vision-lab rebuild")
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model
