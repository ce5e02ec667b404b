import pytest

from models.catalog import PhoneLatency, default_catalog
from pipelines.common.photos import read_photo
from pipelines.lab.precision import (
    HOST_AXES,
    PlotPoint,
    compare_precisions,
    pareto_front,
    phone_axes,
    plot_points,
    published_for,
    published_ms,
)
from pipelines.lab.records import read_evaluations

CATALOG = default_catalog()


def _point(name, ms, score):
    return PlotPoint(name, name, "fp32", ms, score, 1.0, "")


def test_pareto_front_keeps_only_points_nothing_beats():
    points = [_point("a", 1, 50), _point("b", 2, 70), _point("c", 3, 60), _point("d", 4, 80), _point("e", 4, 75)]
    assert [p.card for p in pareto_front(points)] == ["a", "b", "d"]


def test_published_ranges_become_their_midpoint():
    figure = PhoneLatency("m", "fp32", "tflite", "phone", "CPU", "70-90", "src", "", "this model")
    assert published_ms(figure) == 80.0
    assert published_ms(figure.__class__(**{**figure.__dict__, "latency_ms": "0.593"})) == 0.593


def test_every_model_is_plotted_on_the_host_axis():
    evaluations = read_evaluations()
    for task in ("classification", "scene", "object_detection", "face_embedding"):
        points, missing = plot_points(CATALOG, evaluations, task, next(iter(HOST_AXES)))
        assert not missing and {p.card for p in points} == {c.name for c in CATALOG.for_task(task)}
        for p in points:  # the median is plotted; its p90 and runs are in the point's tooltip
            r = evaluations[p.card]
            assert p.latency_ms == r.latency_1t_ms
            assert p.how == f"measured on this host: median of 20 warm runs (p90 {r.latency_1t_p90_ms:.2f} ms)"
    points, missing = plot_points(CATALOG, evaluations, "face_detection", next(iter(HOST_AXES)))
    assert not missing and {p.card for p in points} == set(CATALOG.displays("face_detection"))


def test_a_phone_axis_carries_only_a_variants_own_figure():
    axis = "phone: Pixel 4, CPU 4 threads"
    assert axis in phone_axes(CATALOG, ("classification", "scene"))
    points, missing = plot_points(CATALOG, read_evaluations(), "classification", axis)
    by_card = {p.card: p for p in points}
    assert by_card["efficientnet_lite0.fp32_onnx"].latency_ms == 12.0
    assert by_card["efficientnet_lite0.int8_static_onnx"].latency_ms == 6.5  # the authors' int8 file, same weights
    assert "tensorflow/tpu" in by_card["efficientnet_lite0.fp32_onnx"].how
    assert "mobilenet_v1_0.5_160.uint8_qat_tflite" in missing
    # fp16 is not fp32: the published fp32 figure never stands in for the derived fp16 file
    assert "efficientnet_lite0.fp16_onnx" in missing


def test_related_models_and_other_precisions_never_stand_in():
    for task in ("classification", "scene"):
        for axis in phone_axes(CATALOG, (task,)):
            points, _ = plot_points(CATALOG, read_evaluations(), task, axis)
            for p in points:
                card = CATALOG[p.card]
                figures = published_for(card)
                assert figures and all(f.match.startswith(("this model", "same weights")) for f in figures)
    # the post-training MobileNet v2 is not the quantization-aware file measured on phones
    assert published_for(CATALOG["mobilenet_v2_1.0_224.int8_ptq_tflite"]) == []
    assert published_for(CATALOG["mobilenet_v2_1.0_224.uint8_qat_tflite"])
    # the scene model has only a related ImageNet SqueezeNet's figures (some at w8a8): none is its own
    assert published_for(CATALOG["squeezenet1.1_places365.fp32_onnx"]) == []
    assert CATALOG["squeezenet1.1_places365.fp32_onnx"].phone_latency  # they exist, shown as related only


def test_compare_precisions_runs_every_variant_against_fp32(hub, sample_photos, tmp_path):
    path = tmp_path / "coffee.png"
    sample_photos["coffee"].save(path)
    outcomes = compare_precisions(hub, read_photo(path), "classification", "EfficientNet-Lite0", threads=1, runs=2)
    assert [o.card.precision for o in outcomes] == ["fp32", "fp16", "int8", "int8"]
    assert all(o.reference == "efficientnet_lite0.fp32_onnx" for o in outcomes)
    assert all(o.same_top1 and o.result.top[0].label == "espresso" for o in outcomes)
    assert all(0 < o.latency.median_ms <= o.latency.p90_ms and o.latency.runs == 2 and o.threads == 1 for o in outcomes)
    reference = {c.label for c in outcomes[0].result.top[:5]}
    overlap = [o.top5_overlap for o in outcomes]
    assert overlap == [len(reference & {c.label for c in o.result.top[:5]}) for o in outcomes]  # counted, not assumed
    print("top-5 overlap with fp32:", overlap)
    assert overlap == [5, 5, 5, 4]  # measured: fp16, int8 static keep the top-5; int8 dynamic swaps one


def test_compare_precisions_without_an_fp32_file_uses_the_first_variant(hub, sample_photos, tmp_path):
    path = tmp_path / "coffee.png"
    sample_photos["coffee"].save(path)
    outcomes = compare_precisions(hub, read_photo(path), "classification", "MobileNet v2 1.0/224", threads=1, runs=1)
    assert [o.reference for o in outcomes] == ["mobilenet_v2_1.0_224.uint8_qat_tflite"] * 2


def test_compare_precisions_of_an_unknown_model(hub, sample_photos, tmp_path):
    path = tmp_path / "coffee.png"
    sample_photos["coffee"].save(path)
    with pytest.raises(ValueError, match="no classification model"):
        compare_precisions(hub, read_photo(path), "classification", "ResNet", 1, 1)
