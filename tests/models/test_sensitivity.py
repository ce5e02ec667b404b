"""The per-layer report finds where an int8 static file loses (ONNX Runtime's own QDQ debugging tools), and
the mixed-precision recipe keeps those tensors in float."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from models import derive
from models.backends.onnxruntime import QDQ_AS_WRITTEN
from models.sensitivity import activations_alone, layer_report, weights_alone
from pipelines.common.calibration import calibration_photos, check_photo_paths, open_photos, pool_calibration_paths
from pipelines.common.preprocess import to_input_tensor

STEM = ("/backbone/backbone/stem/conv/conv/Conv_output_0", "/backbone/backbone/stem/conv/act/Mul_output_0")


@pytest.fixture(scope="module")
def yolox_plain(hub, tmp_path_factory):
    """YOLOX-nano int8 static by the plain recipe (nothing in float), and its parent."""
    parent = hub.load("yolox_nano.fp32_onnx")
    calibration = [to_input_tensor(p, parent.card.input) for p in calibration_photos("miniplaces")[:32]]
    path = tmp_path_factory.mktemp("plain") / "yolox_int8.onnx"
    derive.to_int8_static(parent.file.path, path, calibration)
    photos = [to_input_tensor(p, parent.card.input)
              for p in open_photos(check_photo_paths("miniplaces", "object_detection")[:4])]
    return parent, path, layer_report(parent.file.path, path, photos)


def test_the_report_names_the_stem_whose_channels_one_scale_crushes(yolox_plain):
    _, _, report = yolox_plain
    assert report.inputs == 4 and len(report.tensors) > 300 and len(report.weights) > 100
    ranked = [t.tensor for t in report.ranked()[:6]]
    assert set(STEM) <= set(ranked)
    stem = next(t for t in report.tensors if t.tensor == STEM[0])
    assert stem.crushed >= 0.25 and stem.depth < 0.05 and stem.op_type == "Conv"
    # the output's score channels are crushed too (the hypothesis), yet the loss starts at the stem
    head = next(t for t in report.tensors if t.tensor == "/head/Concat_2_output_0")
    assert head.crushed > 0.3
    assert report.output_db < 12  # the plain recipe: noise nearly as large as the signal


def test_keeping_the_stem_in_float_restores_the_output(hub, yolox_plain, tmp_path):
    parent, _, plain = yolox_plain
    calibration = [to_input_tensor(p, parent.card.input) for p in calibration_photos("miniplaces")[:32]]
    mixed = tmp_path / "mixed.onnx"
    derive.to_int8_static(parent.file.path, mixed, calibration, keep_float=STEM)
    photos = [to_input_tensor(p, parent.card.input)
              for p in open_photos(check_photo_paths("miniplaces", "object_detection")[:4])]
    report = layer_report(parent.file.path, mixed, photos)
    assert report.output_db > plain.output_db + 3  # measured on these 4 photos: 6.6 dB -> 11.0 dB
    kept = {t.tensor for t in report.tensors}
    assert not set(STEM) & kept  # no Q/DQ pair on them any more: they are not quantized tensors


def test_keep_float_names_tensors_the_graph_has(hub, tmp_path):
    parent = hub.load("yolox_nano.fp32_onnx")
    graph = onnx.load(str(derive.prepare(parent.file.path, tmp_path))).graph
    assert derive.nodes_around(graph, STEM[:1]) == ["/backbone/backbone/stem/conv/conv/Conv",
                                                    "/backbone/backbone/stem/conv/act/Sigmoid",
                                                    "/backbone/backbone/stem/conv/act/Mul"]
    with pytest.raises(ValueError, match="does not have"):
        derive.nodes_around(graph, ["no/such/tensor"])


def test_check_photos_are_never_calibration_photos_nor_reported_ones():
    for pool, task, reported in (("miniplaces", "object_detection", ("coco", "imagenet_val1300")),
                                 ("coco_imagenet", "scene", ("places_miniplaces",))):
        check, calibrated = check_photo_paths(pool, task), pool_calibration_paths(pool)
        assert len(check) == 200 and len(calibrated) == 128
        assert not {str(p) for p in calibrated} & {str(p) for p in check}
        assert not any(set(reported) & set(p.parts) for p in check + calibrated)
    # variants calibrated on the sample photos: checked where their task is never measured
    for task, reported in (("scene", "places_miniplaces"), ("classification", "imagenet_val1300"),
                           ("object_detection", "coco")):
        assert not any(reported in p.parts for p in check_photo_paths("skimage_samples", task))


def _run(model: onnx.ModelProto, inputs, as_written: bool = True) -> np.ndarray:
    options = ort.SessionOptions()
    if as_written:
        options.add_session_config_entry(*QDQ_AS_WRITTEN)
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {session.get_inputs()[0].name: x})[0] for x in inputs])


@pytest.fixture(scope="module")
def efficientnet(hub, tmp_path_factory):
    """EfficientNet-Lite0's int8 static file (its ReLU6s folded into the Q ranges by the quantizer), the float
    graph it was quantized from, and three of the photos it was calibrated on."""
    variant, parent = hub.load("efficientnet_lite0.int8_static_onnx"), hub.load("efficientnet_lite0.fp32_onnx")
    prepared = onnx.load(str(derive.prepare(parent.file.path, tmp_path_factory.mktemp("prepared"))))
    photos = [to_input_tensor(p, parent.card.input) for p in calibration_photos(variant.card.recipe.calibration)[:3]]
    return onnx.load(str(variant.file.path)), prepared, photos


def test_weights_alone_is_the_parent_with_the_int8_weights(efficientnet):
    qdq, prepared, photos = efficientnet
    alone = weights_alone(qdq)
    assert not [n for n in alone.graph.node if n.op_type == "QuantizeLinear"]
    # built independently: the parent graph with each weight replaced by its dequantized int8 values
    int8_weights = onnx.ModelProto()
    int8_weights.CopyFrom(prepared)
    qdq_values = {i.name: i for i in qdq.graph.initializer}
    for node in qdq.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in qdq_values and node.input[0].endswith("_quantized"):
            q = numpy_helper.to_array(qdq_values[node.input[0]]).astype(np.float32)
            scale = numpy_helper.to_array(qdq_values[node.input[1]])
            zero = numpy_helper.to_array(qdq_values[node.input[2]]).astype(np.float32)
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            shape = [-1 if d == axis else 1 for d in range(q.ndim)] if scale.size > 1 else []
            values = (q - zero.reshape(shape)) * scale.reshape(shape)
            target = next(i for i in int8_weights.graph.initializer if i.name == node.input[0][: -len("_quantized")])
            target.CopyFrom(numpy_helper.from_array(values.astype(np.float32), target.name))
    expected = _run(int8_weights, photos)
    assert np.abs(_run(alone, photos) - expected).max() < 1e-3 * np.abs(expected).max()  # measured 4e-4
    # a plain Identity in place of each Q/DQ pair loses the ReLU6s the quantizer folded into the ranges
    identities = weights_alone(qdq)
    for node in identities.graph.node:
        if node.op_type == "Clip":
            node.op_type = "Identity"
            del node.input[1:]
    assert np.abs(_run(identities, photos) - expected).max() > 0.5 * np.abs(expected).max()


def test_activations_alone_and_weights_alone_together_are_the_float_parent(efficientnet):
    qdq, prepared, photos = efficientnet
    float_outputs = _run(prepared, photos)
    for both in (weights_alone(activations_alone(qdq, prepared)), activations_alone(weights_alone(qdq), prepared)):
        assert not [n for n in both.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
        assert np.abs(_run(both, photos) - float_outputs).max() < 1e-4 * np.abs(float_outputs).max()


def test_activations_alone_keeps_its_float_weights_only_when_run_as_written(efficientnet):
    qdq, prepared, photos = efficientnet
    alone = activations_alone(qdq, prepared)
    assert not [n for n in alone.graph.node if n.op_type == "DequantizeLinear" and n.input[0].endswith("_quantized")]
    file_outputs, written = _run(qdq, photos, as_written=False), _run(alone, photos)
    # ORT's own re-quantization of the float weights (per tensor) moves the outputs far more than the file's
    # int8 weights do; as written, only the activations' rounding stays
    assert np.abs(_run(alone, photos, as_written=False) - written).max() > np.abs(file_outputs - written).max()


def test_the_report_one_input_at_a_time_gives_what_ort_gives_from_every_tensor_kept(efficientnet, tmp_path):
    """The report keeps running sums, not every tensor of every run (gigabytes on a ResNet-50): its figures are
    those of ONNX Runtime's debugging tools run on all the inputs at once."""
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )

    qdq, prepared, photos = efficientnet
    paths = {name: tmp_path / f"{name}.onnx" for name in ("float", "qdq", "float_saved", "qdq_saved")}
    onnx.save(prepared, str(paths["float"]))
    onnx.save(qdq, str(paths["qdq"]))
    report = layer_report(paths["float"], paths["qdq"], photos)
    feeds = [{prepared.graph.input[0].name: p} for p in photos]
    saved = {}
    for name in ("float", "qdq"):
        modify_model_output_intermediate_tensors(str(paths[name]), str(paths[f"{name}_saved"]))
        saved[name] = collect_activations(str(paths[f"{name}_saved"]), feeds)
    expected = compute_activation_error(create_activation_matching(saved["qdq"], saved["float"]))
    assert report.inputs == 3 and len(report.tensors) > 70  # a row per quantized tensor a node writes
    assert [r.tensor for r in report.tensors] == [n for node in prepared.graph.node for n in node.output
                                                   if "xmodel_err" in expected.get(n, {})]
    for row in report.tensors:
        assert row.own_db == pytest.approx(expected[row.tensor]["qdq_err"], abs=0.01)
        assert row.accumulated_db == pytest.approx(expected[row.tensor]["xmodel_err"], abs=0.01)
    # a channel's span is its largest |value| over every run: what share of channels span under 4 uint8 steps
    graph = onnx.shape_inference.infer_shapes(prepared).graph
    shapes = {v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim) for v in graph.value_info}
    scales = {n.input[0]: n.input[1] for n in qdq.graph.node if n.op_type == "QuantizeLinear"}
    constants = {i.name: i for i in qdq.graph.initializer}
    checked = 0
    for row in report.tensors:
        if row.crushed is None or len(shapes.get(row.tensor, ())) != 4:
            continue
        runs = np.stack([t.reshape(shapes[row.tensor]) for t in saved["float"][row.tensor]])
        levels = np.abs(runs).max(axis=(0, 1, 3, 4)) / float(numpy_helper.to_array(constants[scales[row.tensor]]))
        assert row.crushed == pytest.approx(np.mean(levels < 4))
        assert row.median_levels == pytest.approx(np.median(levels))
        checked += 1
    assert checked > 50
    float_outputs = np.concatenate(saved["float"][prepared.graph.output[0].name])
    quantized_outputs = np.concatenate(saved["qdq"][prepared.graph.output[0].name])
    assert report.output_db == pytest.approx(
        20 * np.log10(np.linalg.norm(float_outputs) / np.linalg.norm(float_outputs - quantized_outputs)), abs=0.01)
