"""Serving many people safely: concurrency, no egress, the file route, hostile uploads, logs, health."""

import json
import logging
import os
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from gradio_client.utils import QueueError
from PIL import Image

import app
import ui.server
from tests.helpers import EVAL, MODEL_DIRS, free_port
from ui.sessions import remove_stale_temp

COCO = sorted((EVAL / "coco" / "images").glob("*.jpg"))
PHOTO_ARGS = ("mobilenet_v1_0.25_128.uint8_qat_tflite", "squeezenet1.1_places365.fp32_onnx", 1, 1,
              "nanodet_m.fp32_onnx", 0.3, 0.45)


@pytest.mark.heavy
def test_concurrent_sessions_get_the_answers_they_get_alone(app_url):
    from scripts.load_test import run

    result = run(app_url, clients=4, per_client=5)
    assert result["errors"] == [] and result["mismatches"] == []
    assert result["requests"] == 20
    assert result["distinct"] == {"/classify": 4, "/find_faces": 4, "/analyse_album": 4}  # no two sessions alike


def test_health_is_cheap_and_says_what_is_missing(app_url, tmp_path):
    reply = httpx.get(app_url + "healthz", timeout=10)
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok", "cards": 39, "missing_model_files": [], "unavailable": {},
                            "tasks_losing": {}}
    # the same server's answer for a model folder with one file missing and downloads off
    import shutil

    from models.store import ModelStore
    from pipelines.common.hub import open_hub
    from ui.server import health

    folder = tmp_path / "models"
    shutil.copytree(MODEL_DIRS[0], folder)
    (folder / "detection" / "nanodet_m_320.onnx").unlink()
    report = health(open_hub(ModelStore([folder], tmp_path / "cache", allow_download=False)).store)
    assert report["status"] == "degraded" and report["missing_model_files"] == ["detection/nanodet_m_320.onnx"]
    assert set(report["unavailable"]) == {"nanodet_m.fp32_onnx", "nanodet_m.fp16_onnx", "nanodet_m.int8_static_onnx",
                                          "nanodet_m.int8_dynamic_onnx"}
    assert "object_detection" in report["tasks_losing"]
    # the start-up report of the same store: where each file came from, and what is missing, said plainly
    import io

    from ui.server import report_model_files

    printed = io.StringIO()
    report_model_files(ModelStore([folder], tmp_path / "cache", allow_download=False), printed)
    lines = {line.split()[0]: line for line in printed.getvalue().splitlines()[1:]}
    assert "nanodet_m.fp32_onnx" in lines and "UNAVAILABLE" in lines["nanodet_m.fp32_onnx"]
    assert "nanodet_m.fp16_onnx" not in lines  # derived on first use, not reported as files
    assert " local " in lines["efficientnet_lite0.fp32_onnx"] and str(folder) in lines["efficientnet_lite0.fp32_onnx"]
    assert sum("UNAVAILABLE" in line for line in lines.values()) == 1


def test_queue_limits_and_a_full_queue_answer(served_app, client, coffee_jpg):
    from ui.blocks import CONCURRENCY, QUEUE_SIZE

    demo, _ = served_app
    limits = {fn.api_name: fn.concurrency_limit for fn in demo.fns.values() if fn.api_name}
    album = {name for name, limit in limits.items() if limit == 1}  # the album's button and its API endpoint
    assert "analyse_album" in album and len(album) == 2
    assert {limits[n] for n in set(limits) - album} == {"default"} and demo._queue.default_concurrency_limit == CONCURRENCY == 2
    assert demo._queue.max_size == QUEUE_SIZE == 32 and demo.delete_cache == (300, 900)
    demo._queue.max_size = 0  # every place taken: the next request is told so, nothing runs
    try:
        with pytest.raises(QueueError, match="Queue is full"):
            client.predict(1, "Ann", api_name="/enroll_face")
    finally:
        demo._queue.max_size = QUEUE_SIZE


def raw_get(url: str, path: str) -> tuple[int, bytes]:
    """GET with the path sent exactly as written: no client normalises '..' or '%2e' away first."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


FILE_ROUTES = ("/gradio_api/file=", "/gradio_api/file/")


def test_the_file_route_serves_an_upload_and_nothing_outside_its_folders(app_url):
    reply = httpx.post(app_url + "gradio_api/upload", files={"files": ("mine.jpg", COCO[0].read_bytes(), "image/jpeg")},
                       timeout=30)
    (stored,) = reply.json()
    for route in FILE_ROUTES:
        status, body = raw_get(app_url, route + stored)
        assert status == 200 and body.endswith(COCO[0].read_bytes()[-1000:]), route  # the route does serve
        outside = ["/etc/passwd", str(MODEL_DIRS[0] / "classification" / "efficientnet_lite0_fp32.onnx"),
                   str(Path(app.__file__).resolve()), stored + "/../../../../etc/passwd",
                   str(Path(stored).parent) + "/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "../../../../etc/passwd"]
        for target in outside:
            status, body = raw_get(app_url, route + target)
            assert status in (403, 404) and b"root:" not in body, (route, target, status)


def test_a_saved_gallery_file_is_not_served(app_url, data_dir):
    database = data_dir / "galleries.sqlite"
    database.touch()
    assert httpx.get(app_url + "gradio_api/file=" + str(database), timeout=10).status_code in (403, 404)


@pytest.mark.heavy
def test_nothing_leaves_the_machine(store, tmp_path, data_dir):
    """The whole app in a fresh process, outbound connections blocked at the socket level from the first import
    on, and a request of every kind. The telemetry variables are removed from its environment: the app itself
    must switch telemetry off."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items()
           if k not in ("GRADIO_ANALYTICS_ENABLED", "HF_HUB_DISABLE_TELEMETRY", "ORT_DISABLE_TELEMETRY")}
    env.update(MVL_MODEL_DIRS=os.pathsep.join(str(d) for d in store.model_dirs), MVL_CACHE_DIR=str(store.cache_dir),
               MVL_DATA_DIR=str(data_dir))
    probe = Path(__file__).with_name("no_egress_probe.py")
    done = subprocess.run([sys.executable, str(probe), str(tmp_path), str(EVAL)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    attempts = json.loads(done.stdout.strip().splitlines()[-1])
    assert attempts == [], f"outbound attempts: {attempts}"


def test_stale_session_folders_are_removed_at_startup():
    old = Path(tempfile.mkdtemp(prefix="mvl-upload-"))
    fresh = Path(tempfile.mkdtemp(prefix="mvl-album-"))
    past = time.time() - 3 * 3600
    os.utime(old, (past, past))
    try:
        assert remove_stale_temp() >= 1
        assert not old.exists() and fresh.exists()
    finally:
        import shutil

        shutil.rmtree(fresh, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def test_one_log_line_per_request_without_photo_or_face_data(client, caplog, tmp_path):
    secret = tmp_path / "alice_at_home_2024.jpg"
    secret.write_bytes(COCO[0].read_bytes())
    with caplog.at_level(logging.INFO, logger="mvl.requests"):
        client.predict(handle_file(str(secret)), *PHOTO_ARGS, api_name="/classify")
        with pytest.raises(AppError):
            client.predict(handle_file(str(EVAL / "coco" / "labels.csv")), *PHOTO_ARGS, api_name="/classify")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "mvl.requests"]
    assert [(line["task"], line["outcome"]) for line in lines] == [("photo", "ok"), ("photo", "refused")]
    assert lines[0]["models"] == list(PHOTO_ARGS[:2]) + [PHOTO_ARGS[4]] and lines[0]["ms"] > 0
    assert all("alice" not in r.getMessage() for r in caplog.records)


def test_unicode_and_control_characters_in_file_names(client, tmp_path):
    odd = tmp_path / "été \u202e\x07 photo ../name.jpg".replace("/", "_")
    odd.write_bytes(COCO[0].read_bytes())
    result = client.predict(handle_file(str(odd)), *PHOTO_ARGS, api_name="/classify")
    assert result[2]["label"]


def test_an_upload_with_a_path_in_its_name_lands_in_the_upload_folder(app_url):
    reply = httpx.post(app_url + "gradio_api/upload", files={"files": ("../../../../tmp/escape.jpg", COCO[0].read_bytes(),
                                                                       "image/jpeg")}, timeout=30)
    assert reply.status_code == 200
    (stored,) = reply.json()
    assert ".." not in Path(stored).parts and Path(stored).name == "escape.jpg"
    assert Path(stored).resolve().is_relative_to(Path(tempfile.gettempdir()).resolve())
    assert not Path("/tmp/escape.jpg").exists() or Path("/tmp/escape.jpg").resolve() == Path(stored).resolve()


def test_an_extension_that_lies_and_a_polyglot(client, tmp_path):
    png_named_jpg = tmp_path / "photo.jpg"
    Image.open(COCO[0]).save(png_named_jpg, "PNG")
    assert client.predict(handle_file(str(png_named_jpg)), *PHOTO_ARGS, api_name="/classify")[1].split(",")[0].endswith("PNG")
    text_named_png = tmp_path / "picture.png"
    text_named_png.write_text("<html>not a picture</html>")
    with pytest.raises(AppError, match="not an image"):
        client.predict(handle_file(str(text_named_png)), *PHOTO_ARGS, api_name="/classify")
    polyglot = tmp_path / "poly.jpg"  # a JPEG with a zip appended: read as the JPEG it starts with
    import io
    import zipfile

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("payload.txt", "hello")
    polyglot.write_bytes(COCO[0].read_bytes() + archive.getvalue())
    assert "JPEG" in client.predict(handle_file(str(polyglot)), *PHOTO_ARGS, api_name="/classify")[1]


def test_an_upload_over_the_size_limit_is_refused_before_the_app_reads_it(store, monkeypatch, tmp_path):
    monkeypatch.setattr(ui.server, "UPLOAD_LIMIT", 10_000)
    demo = app.build_app(store)
    url = app.serve(demo, port=free_port(), block=False, quiet=True)
    try:
        big = tmp_path / "big.jpg"
        big.write_bytes(np.random.default_rng(0).integers(0, 255, 50_000, dtype=np.uint8).tobytes())
        reply = httpx.post(url + "gradio_api/upload", files={"files": ("big.jpg", big.read_bytes(), "image/jpeg")},
                           timeout=30)
        assert reply.status_code == 413 or "maximum" in reply.text.lower() or "exceed" in reply.text.lower()
    finally:
        demo.close()
