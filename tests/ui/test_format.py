from models.catalog import default_catalog
from pipelines.common.timing import StageLatency
from ui.format import faces_latency_line

CATALOG = default_catalog()
CARDS = (CATALOG["blazeface_short_range.fp16_tflite"], CATALOG["mobilefacenet.fp32_onnx"])
STAGES = (StageLatency("detection", 8.0, 9.0, 6), StageLatency("total", 12.34, 15.0, 6))


def test_the_faces_line_says_what_was_timed_and_on_how_many_runs():
    three = faces_latency_line(STAGES, 3, 2, CARDS)
    assert three.startswith("<b>12.3 ms</b> here for detection, alignment and 3 embeddings (2 threads, median of 6 "
                            "warm runs; p90 15.0)")
    assert "alignment and 1 embedding (1 thread" in faces_latency_line(STAGES, 1, 1, CARDS)
    # with no face nothing runs after the detector
    assert faces_latency_line(STAGES, 0, 1, CARDS).startswith("<b>12.3 ms</b> here for detection (1 thread")
    assert "BlazeFace short-range phone: <b>2.94 ms</b> Pixel 6" in three
    assert "MobileFaceNet phone: none published for this file at fp32" in three
