"""Bring your own model, through the API: results, downloads, clear errors, nothing left on disk."""

import re
import tempfile
from pathlib import Path

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from tests.helpers import MODEL_DIRS
from tests.graphs import tiny_classifier
from ui.sessions import remove_workdir

LABELS = "models/data/labels/coral_imagenet_labels.txt"
DEFAULTS = dict(height=224, width=224, channels="RGB", scaling="(x - 127.5) / 127.5  (-1..1)",
                resize="shorter side, centre crop 87.5 %", output_kind="auto", threads=1)


def _upload(client, model, photo, labels=None, **form):
    values = {**DEFAULTS, **form}
    return client.predict(
        handle_file(str(model)), handle_file(str(labels)) if labels else None, handle_file(str(photo)),
        values["height"], values["width"], values["channels"], values["scaling"], values["resize"],
        values["output_kind"], values["threads"], api_name="/run_uploaded_model",
    )


def _work_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("mvl-upload-*"))


def test_an_onnx_classifier_is_measured_run_and_derived(client, coffee_jpg):
    model = MODEL_DIRS[0] / "classification" / "efficientnet_lite0_fp32.onnx"
    summary, stats, labels, derived, downloads, layers, curve, note = _upload(client, model, coffee_jpg, LABELS)
    assert labels["label"] == "espresso"
    assert "385.2 M multiply-adds, weights stored as fp32" in summary and "starts with 'background'" in summary
    assert stats["data"][-1][0] == "total" and stats["data"][0][0] == "1x1 convolution"
    assert [row[0] for row in derived["data"]] == ["fp16", "int8_dynamic", "int8_static"]
    assert all(row[1] == "ok" for row in derived["data"])
    # every latency: the warm median with its p90, the threads and the runs behind it
    here = re.search(r"inference: <b>([\d.]+) ms</b> here \(1 thread, median of 10 warm runs; p90 ([\d.]+)\)", summary)
    assert here and float(here[1]) <= float(here[2])
    for row in derived["data"]:
        ms = re.fullmatch(r"([\d.]+) \(p90 ([\d.]+)\); 1 thread, 10 runs", row[3])
        assert ms and 0 < float(ms[1]) <= float(ms[2]), row
    sizes = {row[0]: row[2] for row in derived["data"]}
    assert sizes["int8_static"] < sizes["fp16"] < 18.6
    assert len(downloads) == 3 and all(Path(d).stat().st_size > 1_000_000 for d in downloads)
    # the int8 static variant's per-layer report: ranked tensors, SQNR along the graph, the output's figure
    assert len(layers["data"]) == 15 and all(row[0].startswith("/") and 0 <= row[2] <= 1 for row in layers["data"])
    assert "output SQNR" in note and "measured on 5 photos" in note
    split = re.search(r"([\d.]+) dB with its int8 weights alone, ([\d.]+) dB with its uint8 activations alone: "
                      r"the loss lies (mostly in the weights|mostly in the activations|in both alike)", note)
    weights_db, activations_db = float(split[1]), float(split[2])
    assert split[3] == ("in both alike" if abs(weights_db - activations_db) < 1 else
                        "mostly in the activations" if activations_db < weights_db else "mostly in the weights")
    assert len(curve["data"]) > 100 and curve["columns"] == ["depth", "SQNR dB", "measure"]


@pytest.mark.heavy
def test_a_model_over_the_photo_limit_and_under_its_own_100_mb_is_accepted(client, coffee_jpg, tmp_path):
    """The server's upload cap is the largest kind's (albums), so a 59 MB model reaches its own 100 MB check."""
    import numpy as np
    from onnx import helper

    from tests.graphs import save_onnx

    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "w1", "b1"], ["h"], transB=1),
             helper.make_node("Relu", ["h"], ["r"]), helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], transB=1)]
    inits = {"w1": rng.standard_normal((5000, 3 * 32 * 32)).astype(np.float32) * 0.01, "b1": np.zeros(5000, np.float32),
             "w2": rng.standard_normal((10, 5000)).astype(np.float32) * 0.01, "b2": np.zeros(10, np.float32)}
    model = save_onnx(tmp_path / "dense.onnx", nodes, inits, {"x": [1, 3, 32, 32]}, {"y": [1, 10]})
    assert 55 * 2**20 < model.stat().st_size < 100 * 2**20  # 59 MB
    summary, stats, labels, derived, *_ = _upload(client, model, coffee_jpg, height=32, width=32)
    assert len(labels["confidences"]) == 5 and "15.4 M multiply-adds" in summary
    assert all(row[1] == "ok" for row in derived["data"])


def test_a_tflite_classifier_runs_without_derivations(client, coffee_jpg):
    model = MODEL_DIRS[0] / "classification" / "coral_mobilenet_v1_0.25_128_quant.tflite"
    summary, _, labels, derived, downloads, layers, _, note = _upload(
        client, model, coffee_jpg, LABELS, scaling="(x - 128) / 128  (TF quantized MobileNets)")
    assert labels["label"] == "espresso" and "fixed at 128x128" in summary
    assert derived["data"] == [] and downloads is None and layers["data"] == [] and note == ""


def test_a_bad_model_is_refused_and_its_folder_removed(client, coffee_jpg, tmp_path):
    before = _work_folders()
    fake = tmp_path / "weights.onnx"
    fake.write_text("not a model\n" * 50)
    with pytest.raises(AppError, match="not a model onnx can load"):
        _upload(client, fake, coffee_jpg)
    assert _work_folders() == before


def test_labels_that_do_not_match_are_refused(client, coffee_jpg, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    with pytest.raises(AppError, match="2 labels but the model gives 10"):
        _upload(client, tiny_classifier(tmp_path / "tiny.onnx"), coffee_jpg, labels, height=32, width=32)


def test_a_new_upload_replaces_the_previous_folder_of_the_session(app_url, coffee_jpg, tmp_path):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    try:
        before = _work_folders()
        model = tiny_classifier(tmp_path / "tiny.onnx")
        _upload(client, model, coffee_jpg, height=32, width=32)
        first = _work_folders() - before
        _upload(client, model, coffee_jpg, height=32, width=32)
        second = _work_folders() - before
        assert len(first) == 1 and len(second) == 1 and first != second
    finally:
        client.close()


def test_a_sessions_folders_go_when_gradio_ends_the_session(served_app, coffee_jpg, tmp_path):
    from gradio_client import Client

    from ui.sessions import SESSION_TTL_S

    demo, url = served_app
    states = [b for b in demo.blocks.values() if getattr(b, "delete_callback", None) is remove_workdir]
    assert len(states) == 3 and all(b.time_to_live == SESSION_TTL_S for b in states)  # album, faces, your model
    client = Client(url, verbose=False)
    try:
        before = _work_folders()
        _upload(client, tiny_classifier(tmp_path / "tiny.onnx"), coffee_jpg, height=32, width=32)
        (folder,) = _work_folders() - before
        assert any(folder.iterdir())
        demo.state_holder.delete_state(client.session_hash)  # what Gradio does when a closed session expires
        assert not folder.exists()
    finally:
        client.close()


def test_removing_a_session_folder_deletes_everything_in_it(tmp_path):
    folder = tmp_path / "mvl-upload-x"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "model.onnx").write_bytes(b"x")
    remove_workdir(str(folder))
    assert not folder.exists()
    remove_workdir(None)
