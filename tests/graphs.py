"""Small ONNX graphs built by the tests (IR 9: what ONNX Runtime 1.31 loads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(7)


def save_onnx(path: Path, nodes, inits: dict[str, np.ndarray], inputs: dict[str, list], outputs: dict[str, list],
              extra_opsets: tuple[tuple[str, int], ...] = ()) -> Path:
    graph = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in inputs.items()],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in outputs.items()],
        [numpy_helper.from_array(value, name) for name, value in inits.items()],
    )
    opsets = [helper.make_opsetid("", 13)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    onnx.save(helper.make_model(graph, opset_imports=opsets, ir_version=9), str(path))
    return path


def tiny_classifier(path: Path, classes: int = 10, size: int = 32, before_pool: list | None = None) -> Path:
    """[1, 3, size, size] -> global average pool -> dense -> [1, classes] logits."""
    nodes = (before_pool or []) + [
        helper.make_node("GlobalAveragePool", ["a" if before_pool else "x"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "w", "b"], ["y"], transB=1),
    ]
    inits = {"w": RNG.standard_normal((classes, 3)).astype(np.float32), "b": np.zeros(classes, np.float32)}
    return save_onnx(path, nodes, inits, {"x": [1, 3, size, size]}, {"y": [1, classes]})
