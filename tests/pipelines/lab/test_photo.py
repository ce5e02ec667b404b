import pytest

from pipelines.common.photos import read_photo
from pipelines.lab.photo import PhotoOptions, analyse_photo


def test_analyse_photo_reports_both_tasks_with_the_requested_threads(hub, sample_photos, tmp_path):
    path = tmp_path / "coffee.png"
    sample_photos["coffee"].save(path)
    analysis = analyse_photo(hub, read_photo(path), PhotoOptions("mobilenet_v1_0.25_128.uint8_qat_tflite",
                             "squeezenet1.1_places365.fp32_onnx", threads=2, runs=3))
    assert analysis.imagenet.result.top[0].label == "espresso"
    assert analysis.scene.result.environment == "indoor"
    for item in (analysis.imagenet, analysis.scene):
        assert item.latency.threads == 2 and item.latency.runs == 3
        assert item.model.backend.threads == 2
        assert [s.stage for s in item.latency.stages] == ["preprocess", "inference", "postprocess", "total"]


@pytest.mark.parametrize(
    "imagenet, scene, threads, runs, message",
    [
        ("efficientnet_lite0.fp32_onnx", "squeezenet1.1_places365.fp32_onnx", 3, 5, "threads"),
        ("efficientnet_lite0.fp32_onnx", "squeezenet1.1_places365.fp32_onnx", 1, 0, "runs"),
        ("squeezenet1.1_places365.fp32_onnx", "squeezenet1.1_places365.fp32_onnx", 1, 5, "not an ImageNet"),
        ("efficientnet_lite0.fp32_onnx", "efficientnet_lite0.fp32_onnx", 1, 5, "not a scene"),
    ],
)
def test_analyse_photo_refuses_bad_options(hub, sample_photos, tmp_path, imagenet, scene, threads, runs, message):
    path = tmp_path / "coffee.png"
    sample_photos["coffee"].save(path)
    with pytest.raises(ValueError, match=message):
        analyse_photo(hub, read_photo(path), PhotoOptions(imagenet, scene, threads, runs))
