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


def memory_bomb(path: Path, side: int = 60000) -> Path:
    """A valid ~1 KB graph whose ConstantOfShape asks for a side x side float tensor (14.4 GB at 60000)."""
    fill = numpy_helper.from_array(np.array([1.0], np.float32))
    nodes = [
        helper.make_node("ConstantOfShape", ["shape"], ["big"], value=fill),
        helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
        helper.make_node("GlobalAveragePool", ["x"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "w", "b"], ["g"], transB=1),
        helper.make_node("Mul", ["g", "total"], ["y"]),
    ]
    inits = {"shape": np.array([side, side], np.int64), "w": RNG.standard_normal((10, 3)).astype(np.float32),
             "b": np.zeros(10, np.float32)}
    return save_onnx(path, nodes, inits, {"x": [1, 3, 32, 32]}, {"y": [1, 10]})


def hidden_memory_bomb(path: Path, side_per_unit: float = 40000.0) -> Path:
    """The same bomb with its size computed from the input's values at run time: no static check can see it
    (about 6.4 GB for a photo scaled to -1..1)."""
    nodes = [
        helper.make_node("ReduceMax", ["x"], ["peak"], keepdims=0),
        helper.make_node("Mul", ["peak", "k"], ["scaled"]),
        helper.make_node("Cast", ["scaled"], ["n"], to=TensorProto.INT64),
        helper.make_node("Unsqueeze", ["n", "axis"], ["n1"]),
        helper.make_node("Concat", ["n1", "n1"], ["shape"], axis=0),
        helper.make_node("ConstantOfShape", ["shape"], ["big"], value=numpy_helper.from_array(np.array([1.0], np.float32))),
        helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
        helper.make_node("GlobalAveragePool", ["x"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "w", "b"], ["g"], transB=1),
        helper.make_node("Mul", ["g", "total"], ["y"]),
    ]
    inits = {"k": np.array(side_per_unit, np.float32), "axis": np.array([0], np.int64),
             "w": RNG.standard_normal((10, 3)).astype(np.float32), "b": np.zeros(10, np.float32)}
    return save_onnx(path, nodes, inits, {"x": [1, 3, 32, 32]}, {"y": [1, 10]})


def compute_bomb(path: Path, steps: int = 1000, side: int = 1024) -> Path:
    """A small file that multiplies [3 x side, side] by a side x side matrix `steps` times: minutes of CPU."""
    nodes = [helper.make_node("Reshape", ["x", "rows"], ["h0"])]
    for i in range(steps):
        nodes.append(helper.make_node("MatMul", [f"h{i}", "m"], [f"h{i + 1}"]))
    nodes += [
        helper.make_node("ReduceSum", [f"h{steps}"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["nothing"]),
        helper.make_node("GlobalAveragePool", ["x"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "w", "b"], ["g"], transB=1),
        helper.make_node("Add", ["g", "nothing"], ["y"]),
    ]
    inits = {"rows": np.array([3 * side, side], np.int64), "m": (np.eye(side, dtype=np.float32) * 0.5),
             "zero": np.array(0.0, np.float32), "w": RNG.standard_normal((10, 3)).astype(np.float32),
             "b": np.zeros(10, np.float32)}
    return save_onnx(path, nodes, inits, {"x": [1, 3, side, side]}, {"y": [1, 10]})
