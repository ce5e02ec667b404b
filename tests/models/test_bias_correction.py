"""Bias correction: a convolution's int8 rounding leaves no systematic error on the inputs it was corrected on,
for plain and depthwise convolutions, and the function is what the recipe uses."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from models import derive


def _conv(group: int) -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    weights = {"w": 0.1 * rng.normal(size=(16, 16 // group, 3, 3)), "b": rng.normal(size=16)}
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", group=group)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 10, 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _mean_error(int8_path, float_path, inputs) -> float:
    """The largest per-channel mean of (int8 - float) outputs over the inputs."""
    q, f = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (int8_path, float_path))
    error = np.mean([(q.run(None, {"x": x})[0] - f.run(None, {"x": x})[0]).mean(axis=(0, 2, 3)) for x in inputs], 0)
    return float(np.abs(error).max())


@pytest.mark.parametrize("group", [1, 16])
def test_the_rounding_leaves_no_systematic_error(tmp_path, group):
    src = tmp_path / "conv.onnx"
    onnx.save(_conv(group), str(src))
    rng = np.random.default_rng(2)
    inputs = [(0.5 + rng.random((1, 16, 10, 10))).astype(np.float32) for _ in range(16)]  # a mean far from 0
    errors = {}
    for corrected in (False, True):
        dst = tmp_path / f"int8_{corrected}.onnx"
        derive.to_int8_static(src, dst, inputs, bias_correct=corrected)
        errors[corrected] = _mean_error(dst, src, inputs)
    assert errors[True] < errors[False] / 4, errors
