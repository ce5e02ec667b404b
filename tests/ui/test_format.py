from models.catalog import default_catalog
from pipelines.common.timing import StageLatency
from pipelines.lab.precision import task_rows
from pipelines.lab.records import read_evaluations
from ui.format import MODEL_HEADERS, faces_latency_line, here_ms, model_rows, ms_cell

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


def test_a_figure_under_a_millisecond_keeps_two_decimals():
    assert here_ms(StageLatency("inference", 0.043, 0.051, 10), 1).startswith("<b>0.04 ms</b> here (1 thread")
    assert here_ms(StageLatency("inference", 0.043, 0.051, 10), 1).endswith("p90 0.05)")
    assert here_ms(StageLatency("inference", 3.04, 3.26, 10), 2).startswith("<b>3.0 ms</b> here (2 threads")


def test_a_table_cell_measured_here_gives_median_p90_threads_and_runs():
    assert ms_cell(StageLatency("inference", 15.521, 15.93, 10), 1) == "15.52 (p90 15.93); 1 thread, 10 runs"
    assert ms_cell(StageLatency("inference", 8.0, 9.0, 3), 2).endswith("; 2 threads, 3 runs")


def test_the_models_table_gives_each_variant_its_median_and_p90_here():
    evaluations = read_evaluations()
    column = MODEL_HEADERS.index("ms here, 1 thread: median (p90)")
    for task in ("classification", "scene", "object_detection", "face_detection", "face_embedding"):
        rows = model_rows(CATALOG, evaluations, task)
        assert rows
        for row, (key, *_) in zip(rows, task_rows(CATALOG, task), strict=True):
            r = evaluations[key]
            assert r.latency_1t_ms <= r.latency_1t_p90_ms and r.latency_2t_ms <= r.latency_2t_p90_ms
            assert row[column] == f"{r.latency_1t_ms:.2f} ({r.latency_1t_p90_ms:.2f})"
