"""Derived precisions: deterministic files, the right graph, and the accuracy they keep."""

import hashlib

import numpy as np
import onnx
import pytest

from models.catalog import default_catalog
from models.store import DerivationError, ModelStore
from pipelines.common.calibration import calibration_inputs
from pipelines.vision.classification import Classifier
from tests.helpers import MODEL_DIRS
from tests.pipelines.lab.test_accuracy import accuracy

CATALOG = default_catalog()
DERIVED = [c for c in CATALOG if c.is_derived]


def _resolve(store: ModelStore, card):
    return store.resolve(card, calibration_inputs(card) if card.recipe.calibration else None)


@pytest.mark.heavy
@pytest.mark.parametrize("card", [c for c in DERIVED if not c.recipe.fine_tune], ids=lambda c: c.name)
def test_the_same_parent_and_recipe_give_the_same_file(tmp_path, card):
    first = _resolve(ModelStore(MODEL_DIRS, cache_dir=tmp_path / "a", allow_download=False), card)
    second = _resolve(ModelStore(MODEL_DIRS, cache_dir=tmp_path / "b", allow_download=False), card)
    assert first.origin == second.origin == "derived"
    assert first.sha256 == second.sha256 == hashlib.sha256(first.path.read_bytes()).hexdigest()
    again = _resolve(ModelStore(MODEL_DIRS, cache_dir=tmp_path / "a", allow_download=False), card)
    assert again.origin == "cache" and again.path == first.path


@pytest.mark.heavy
@pytest.mark.parametrize("card", [c for c in DERIVED if c.recipe.fine_tune], ids=lambda c: c.name)
def test_a_fine_tuned_file_is_made_the_same_again(hub, tmp_path, card):
    """Fine-tuning takes minutes: the session's file is compared with one made in a fresh cache."""
    session = hub.load(card)
    fresh = _resolve(ModelStore(MODEL_DIRS, cache_dir=tmp_path, allow_download=False), card)
    assert fresh.origin == "derived" and fresh.sha256 == session.file.sha256


def test_a_damaged_derived_file_is_made_again(tmp_path):
    card = CATALOG["squeezenet1.1_places365.fp16_onnx"]
    store = ModelStore(MODEL_DIRS, cache_dir=tmp_path, allow_download=False)
    made = store.resolve(card)
    made.path.write_bytes(made.path.read_bytes()[:1000])
    fresh = ModelStore(MODEL_DIRS, cache_dir=tmp_path, allow_download=False).resolve(card)
    assert fresh.origin == "derived" and fresh.sha256 == made.sha256


def test_int8_static_without_calibration_photos_is_refused(tmp_path):
    store = ModelStore(MODEL_DIRS, cache_dir=tmp_path, allow_download=False)
    with pytest.raises(DerivationError, match="calibrated on photos"):
        store.resolve("efficientnet_lite0.int8_static_onnx")
    assert not list((tmp_path / "derived").glob("*.onnx"))


def _graph(hub, name):
    return onnx.load(str(hub.load(name, threads=1).file.path))


def test_fp16_keeps_fp32_inputs_and_outputs(hub):
    graph = _graph(hub, "efficientnet_lite0.fp16_onnx").graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    weights = [t for t in graph.initializer if len(t.dims) == 4]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)


def test_int8_static_is_qdq_with_uint8_activations_and_per_channel_int8_weights(hub):
    graph = _graph(hub, "efficientnet_lite0.int8_static_onnx").graph
    inits = {t.name: t for t in graph.initializer}
    quant = [n for n in graph.node if n.op_type == "QuantizeLinear"]
    assert quant, "no QuantizeLinear nodes"
    activation_types = {inits[n.input[2]].data_type for n in quant if n.input[2] in inits}
    assert activation_types == {onnx.TensorProto.UINT8}
    weights = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4]
    assert weights
    per_channel_scales = [
        inits[n.input[1]] for n in graph.node
        if n.op_type == "DequantizeLinear" and n.input[0] in {w.name for w in weights}
    ]
    assert per_channel_scales and all(len(s.dims) == 1 and s.dims[0] > 1 for s in per_channel_scales)


@pytest.mark.heavy
@pytest.mark.parametrize("parent", ["efficientnet_lite0.fp32_onnx", "squeezenet1.1_places365.fp32_onnx"])
def test_int8_static_top1_within_2_points_and_fp16_agrees_on_99_percent(hub, parent):
    task = CATALOG[parent].task
    base = accuracy(Classifier(hub.load(parent, threads=2)), task)
    stem = parent.rsplit(".", 1)[0]
    int8 = accuracy(Classifier(hub.load(f"{stem}.int8_static_onnx", threads=2)), task)
    fp16 = accuracy(Classifier(hub.load(f"{stem}.fp16_onnx", threads=2)), task)
    assert abs(int8.top1 - base.top1) <= 0.02
    agreement = np.mean(np.array(fp16.predictions) == np.array(base.predictions))
    assert agreement >= 0.99, f"fp16 agrees with fp32 on {agreement:.1%}"
