"""Activation range equalization: the same function, every channel of an equalized activation on one range, and
sites where it would not be exact left alone."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from models.equalize import equalize, sites
from pipelines.common.calibration import calibration_inputs

SQUEEZENET = "squeezenet1.1_places365.int8_static_onnx"


def _run(model: onnx.ModelProto, x: np.ndarray, outputs: list[str] | None = None) -> list[np.ndarray]:
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in outputs or []:
        probe.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {model.graph.input[0].name: x})


def _graph(middle: str, also_output: bool = False) -> onnx.ModelProto:
    """x -> Conv a (4 channels, one of them 50x the others) -> middle -> Conv b -> y."""
    rng = np.random.default_rng(0)
    wa = rng.normal(size=(4, 3, 1, 1)).astype(np.float32)
    wa[2] *= 50
    nodes = [helper.make_node("Conv", ["x", "wa", "ba"], ["a"], name="conv_a"),
             helper.make_node(middle, ["a"], ["m"], name="middle"),
             helper.make_node("Conv", ["m", "wb"], ["y"], name="conv_b", kernel_shape=[3, 3])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if also_output:
        outputs.append(helper.make_tensor_value_info("m", TensorProto.FLOAT, None))
    weights = {"wa": wa, "ba": rng.normal(size=4), "wb": rng.normal(size=(2, 4, 3, 3))}
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              outputs, [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def test_a_relu_between_convolutions_is_equalized_exactly():
    model = _graph("Relu")
    x = [np.random.default_rng(k).normal(size=(1, 3, 8, 8)).astype(np.float32) for k in range(4)]
    assert [(tuple(w.name for w in s.writers), tuple(r.name for r in s.readers)) for s in sites(model.graph)] == \
        [(("conv_a",), ("conv_b",))]
    equalized = equalize(model, x)
    for tensor in x:
        np.testing.assert_allclose(_run(equalized, tensor)[0], _run(model, tensor)[0], rtol=1e-4, atol=1e-4)
    before = np.max([np.abs(_run(model, t, ["a"])[1]).max(axis=(0, 2, 3)) for t in x], axis=0)
    after = np.max([np.abs(_run(equalized, t, ["a"])[1]).max(axis=(0, 2, 3)) for t in x], axis=0)
    assert before.max() / before.min() > 10 and after.max() / after.min() == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("middle, also_output", [("Sigmoid", False), ("Relu", True)])
def test_where_scaling_would_change_the_function_nothing_is_touched(middle, also_output):
    model = _graph(middle, also_output)
    assert sites(model.graph) == []
    assert equalize(model, [np.ones((1, 3, 8, 8), np.float32)]) is model


def test_squeezenet_equalized_computes_the_same(hub):
    parent = hub.load(hub.store.catalog[SQUEEZENET].derived_from)
    inputs = calibration_inputs(hub.store.catalog[SQUEEZENET])()
    model = onnx.load(str(parent.file.path))
    found = sites(model.graph)
    # the stem and, in each of the 8 fire modules, the squeeze convolution and the two expands (concatenated)
    assert len(found) == 17 and sum(len(s.writers) == 2 for s in found) == 8
    equalized = equalize(model, inputs)
    for x in inputs[:5]:
        np.testing.assert_allclose(_run(equalized, x)[0], _run(model, x)[0], atol=1e-5)
