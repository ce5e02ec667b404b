"""The app through its API, as gradio_client drives it."""

import re

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.helpers import png_bytes, raw_png

LITE = "efficientnet_lite0.fp32_onnx"
SCENE = "squeezenet1.1_places365.fp32_onnx"


def _classify(client, path, imagenet=LITE, scene=SCENE, threads=1, runs=3, objects="yolox_nano.fp32_onnx",
              score=0.3, iou=0.45):
    return client.predict(handle_file(str(path)), imagenet, scene, threads, runs, objects, score, iou,
                          api_name="/classify")


def test_classify_a_photo(client, coffee_jpg):
    (shown, notes, imagenet, scenes, environment, host, phone, phone_missing, cards, faces, faces_note, objects,
     summary, comparison) = _classify(client, coffee_jpg)
    assert faces == [] and "No face" in faces_note
    assert "1. cup" in [" ".join(a["label"].split(" ")[:2]) for a in objects["annotations"]]
    assert 'id="summary-imagenet"' in summary and "espresso" in summary and "phone: <b>12 ms</b> Pixel 4" in summary
    assert comparison["data"] == []  # no comparison of another photo outlives it
    assert ("objects", "inference") in {(row[0], row[4]) for row in host["data"]}
    assert imagenet["label"] == "espresso"
    assert len(imagenet["confidences"]) == 5
    assert "coffee shop" in [c["label"] for c in scenes["confidences"]]
    assert environment.startswith("**indoor** (")  # the verdict itself, not the sentence around it
    stages = {(row[0], row[4]) for row in host["data"]}
    assert {("ImageNet", "inference"), ("scene", "total")} <= stages
    assert all(row[3] == 1 and row[7] == 3 for row in host["data"])  # threads and runs as asked
    inference = next(row for row in host["data"] if row[:1] == ["ImageNet"] and row[4] == "inference")
    shown_ms = re.search(r"<b>([\d.]+) ms</b> here \(1 thread, median of 3 warm runs; p90 ([\d.]+)\)", summary)
    assert shown_ms and abs(float(shown_ms[1]) - inference[5]) <= 0.051  # the table rounds to 0.01, the line to 0.1
    assert abs(float(shown_ms[2]) - inference[6]) <= 0.051
    assert any(row[1] == "Pixel 4" and "tensorflow/tpu" in row[7] for row in phone["data"])
    assert "18.60 MB" in cards and "Demo use only" in cards
    assert shown and "JPEG" in notes


def test_a_model_with_no_published_figure_says_so(client, coffee_jpg):
    phone_missing = _classify(client, coffee_jpg, imagenet="mobilenet_v1_0.5_160.uint8_qat_tflite")[7]
    assert "MobileNet v1 0.5/160" in phone_missing and "no published measurement" in phone_missing


def test_fp16_explains_why_it_is_not_faster_here(client, coffee_jpg):
    cards = _classify(client, coffee_jpg, imagenet="efficientnet_lite0.fp16_onnx")[8]
    assert "derived here from `efficientnet_lite0.fp32_onnx`" in cards and "fp16 on this CPU" in cards


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("notes.txt", b"just some text, not a photo\n" * 10, "not an image"),
        ("empty.jpg", b"", "empty"),
        ("tiny.png", png_bytes(Image.new("RGB", (1, 1), (10, 200, 30))), "at least 16 pixels"),
        ("huge.png", raw_png(np.zeros((16, 16, 3), np.uint8), declared=(20000, 20000)), "megapixels"),
        ("cut.png", png_bytes(Image.new("RGB", (400, 300), (10, 200, 30)))[:300], "corrupt or truncated|not an image"),
    ],
)
def test_bad_input_gets_a_clear_message_and_the_app_keeps_serving(client, tmp_path, coffee_jpg, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AppError, match=message):
        _classify(client, path)
    assert _classify(client, coffee_jpg)[2]["label"] == "espresso"


def test_an_unknown_card_is_a_clear_error(client, coffee_jpg):
    with pytest.raises(AppError, match="unknown model card"):
        _classify(client, coffee_jpg, imagenet="resnet50.fp32")


def test_object_thresholds_come_from_the_sliders(client, coffee_jpg):
    loose = _classify(client, coffee_jpg, objects="nanodet_m.fp32_onnx", score=0.1)[11]["annotations"]
    strict = _classify(client, coffee_jpg, objects="nanodet_m.fp32_onnx", score=0.6)[11]["annotations"]
    assert len(strict) < len(loose)
    assert all(float(a["label"].rsplit(" ", 1)[1]) >= 0.6 for a in strict)


def test_an_object_card_of_another_task_is_refused(client, coffee_jpg):
    with pytest.raises(AppError, match="not an object detector"):
        _classify(client, coffee_jpg, objects="efficientnet_lite0.fp32_onnx")
