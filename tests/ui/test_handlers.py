"""Handlers are plain functions of the app context: called here without a server."""

import gradio as gr
import pytest

from tests.helpers import EVAL
from ui import faces_tab, models_tab, photo_tab
from ui.context import AppContext


@pytest.fixture(scope="module")
def ctx(store):
    return AppContext.create(store)


def test_the_photo_handler_runs_without_a_server(ctx, coffee_jpg):
    result = photo_tab.classify(ctx, str(coffee_jpg), "mobilenet_v1_0.25_128.uint8_qat_tflite",
                                "squeezenet1.1_places365.fp32_onnx", 1, 1, "nanodet_m.fp32_onnx", 0.3, 0.45, None)
    assert max(result[2], key=result[2].get) == "espresso"
    assert "cup" in {label.split(" ")[1] for _, label in result[11][1]}  # "1. cup 0.87": numbered as on the photo
    assert "espresso" in result[12] and "ms</b> here" in result[12]  # the summary
    assert result[13] is None  # no comparison of another photo outlives it


def test_a_domain_error_becomes_a_message_for_the_person(ctx, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not a photo\n" * 10)
    with pytest.raises(gr.Error, match="This photo cannot be used: the file is not an image"):
        photo_tab.classify(ctx, str(bad), "mobilenet_v1_0.25_128.uint8_qat_tflite",
                           "squeezenet1.1_places365.fp32_onnx", 1, 1)


def test_the_faces_handlers_keep_the_gallery_a_value(ctx):
    group = EVAL / "faces_groups" / "images" / "2008_001322.jpg"
    options = ["MTCNN (ONNX Runtime)", "mobilefacenet.fp32_onnx", 20, 0.6, 0.7, 0.7, 600, 20, 1]
    *_, last = faces_tab.find_faces(ctx, str(group), *options, None)
    gallery, rows = faces_tab.enroll_face(ctx, 2, "Alice", last, None)
    assert rows == [["Alice", 1, "mobilefacenet.fp32_onnx"]] and len(gallery.entries) == 1
    again, _ = faces_tab.enroll_face(ctx, 1, "Bob", last, gallery)
    assert len(gallery.entries) == 1 and len(again.entries) == 2  # the old value is untouched


def test_the_layer_report_is_offered_for_the_cards_it_can_be_made_for(ctx):
    offered = [name for _, name in models_tab.int8_cards(ctx)]
    assert offered == ["efficientnet_lite0.int8_static_onnx", "squeezenet1.1_places365.int8_static_onnx",
                       "yolox_nano.int8_static_onnx", "nanodet_m.int8_static_onnx"]
    # MobileFaceNet calibrates on scikit-image's faces, and no other face photos here may stand as held out
    assert models_tab.unreported_note(ctx).startswith("Not offered: MobileFaceNet")
    assert "skimage_lfw_faces" in models_tab.unreported_note(ctx)
