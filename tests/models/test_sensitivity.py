"""The per-layer report finds where an int8 static file loses (ONNX Runtime's own QDQ debugging tools), and
the mixed-precision recipe keeps those tensors in float."""

import onnx
import pytest

from models import derive
from models.sensitivity import layer_report
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
    photos = [to_input_tensor(p, parent.card.input) for p in open_photos(check_photo_paths("miniplaces")[:4])]
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
    photos = [to_input_tensor(p, parent.card.input) for p in open_photos(check_photo_paths("miniplaces")[:4])]
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
    for pool, reported in (("miniplaces", "coco"), ("coco_imagenet", "places_miniplaces")):
        check, calibrated = check_photo_paths(pool), pool_calibration_paths(pool)
        assert len(check) == 200 and len(calibrated) == 128
        assert not {str(p) for p in calibrated} & {str(p) for p in check}
        assert all(reported not in p.parts for p in check + calibrated)
