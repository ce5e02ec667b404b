"""The app as it runs on a fresh Hugging Face Space: from the bundle, with nothing beside it and no network;
and from a plain clone whose four files without a public download are absent."""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

import app
from models.store import ModelStore
from scripts.space_bundle import build, listing
from tests.helpers import EVAL, MODEL_DIRS, SHARED, free_port

NO_PUBLIC_DOWNLOAD = ("classification/efficientnet_lite0_fp32.onnx", "scene/squeezenet1.1bn_places365_fp32.onnx",
                      "face_detection/biubug6_1mb_mobile0.25_320.onnx", "face_detection/biubug6_1mb_slim_320.onnx")
PHOTO = sorted((EVAL / "coco" / "images").glob("*.jpg"))[0]
GROUP = EVAL / "faces_groups" / "images" / "2008_001322.jpg"
FACES = ("MTCNN (ONNX Runtime)", "mobilefacenet.fp32_onnx", 20, 0.6, 0.7, 0.7, 600, 20, 1)
DEFAULTS = ("efficientnet_lite0.fp32_onnx", "squeezenet1.1_places365.fp32_onnx", 1, 2)


def _wait_for_health(url: str, process: subprocess.Popen, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the app exited: {process.stdout.read()[-3000:]}")
        try:
            reply = httpx.get(url + "healthz", timeout=2)
            if reply.status_code == 200:  # the route is added just after the server starts
                return reply.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the app did not answer /healthz in time")


def _every_endpoint(url: str) -> None:
    client = Client(url, verbose=False)
    try:
        photo = client.predict(handle_file(str(PHOTO)), *DEFAULTS, "yolox_nano.fp32_onnx", 0.3, 0.45,
                               api_name="/classify")
        assert photo[2]["label"] and photo[3]["label"]  # ImageNet and scene labels
        compared = client.predict(handle_file(str(PHOTO)), *DEFAULTS, api_name="/compare_precisions")
        assert len(compared["data"]) == 8  # 4 precisions of each default model
        faces = client.predict(handle_file(str(GROUP)), *FACES, api_name="/find_faces")
        assert "**3 face(s)**" in faces[2]
        album = client.predict([handle_file(str(PHOTO)), handle_file(str(GROUP))], None, 60, 0.003, 0.5,
                               api_name="/analyse_album")
        assert "**2 photos" in album[0]
        figure, _ = client.predict("scene", api_name="/models_plot")
        assert figure
    finally:
        client.close()


@pytest.mark.heavy
def test_the_bundle_serves_every_endpoint_with_nothing_beside_it_and_no_network(store, tmp_path):
    bundle = tmp_path / "space"
    results = build(bundle, include_unclear=True, store=store)
    assert all(r.status.startswith("bundled") for r in results), [r for r in results if not r.status.startswith("bundled")]
    derived = {r.card.name for r in results if r.status.startswith("bundled (derived here")}
    # calibration or fine-tuning photos not in a Space
    assert derived == {"yolox_nano.int8_static_onnx", "nanodet_m.int8_static_onnx",
                       "squeezenet1.1_places365.int8_static_onnx"}
    files, total = listing(bundle)
    assert (bundle / ".gitattributes").read_text().startswith("*.onnx filter=lfs")
    assert "demo only" in (bundle / "MODELS.md").read_text() and "## This Space" in (bundle / "README.md").read_text()
    home, log = tmp_path / "home", tmp_path / "egress.log"
    home.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MVL_", "XDG_", "HF_", "GRADIO_"))}
    env.update(HOME=str(home), GRADIO_SERVER_PORT=str(port), MVL_EGRESS_LOG=str(log),
               PYTHONPATH=str(Path(__file__).parent))
    folders_before = set(Path(tempfile.gettempdir()).glob("mvl-*"))
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", "import egress_guard, runpy; runpy.run_path('app.py', "
                                "run_name='__main__')"], cwd=bundle, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        health = _wait_for_health(url, process, 180)
        cold_start = time.perf_counter() - start
        print(f"bundle: {len(files)} files, {total / 1e6:.1f} MB; cold start to /healthz {cold_start:.1f} s")
        assert health["status"] == "ok" and health["missing_model_files"] == [], health
        _every_endpoint(url)
        assert httpx.get(url + "healthz", timeout=10).json()["status"] == "ok"
    finally:
        process.terminate()  # SIGTERM, as a Space's container is stopped
        process.wait(timeout=30)
    # the sessions' folders (album results, exports, examples) went with the stopped server
    assert set(Path(tempfile.gettempdir()).glob("mvl-*")) <= folders_before
    assert not log.exists() or log.read_text() == "", f"outbound attempts: {log.read_text()}"
    assert not any((home / ".cache" / "mobile-vision-lab").glob("**/*.tflite"))  # files came from the bundle


@pytest.fixture(scope="module")
def four_absent(tmp_path_factory):
    """A model folder with every shared file but the four that have no public download (their public weights
    are there, as a networked Space would download them)."""
    folder = tmp_path_factory.mktemp("four-absent")
    for path in (MODEL_DIRS[0]).rglob("*"):
        relative = path.relative_to(MODEL_DIRS[0])
        if path.is_file() and str(relative) not in NO_PUBLIC_DOWNLOAD and path.name != "MANIFEST.toml":
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).symlink_to(path)
    return ModelStore([folder], cache_dir=tmp_path_factory.mktemp("four-absent-cache"), allow_download=False)


def test_a_clone_without_the_four_files_serves_the_defaults_and_marks_what_it_lacks(four_absent):
    demo = app.build_app(four_absent)
    url = app.serve(demo, port=free_port(), block=False, quiet=True)
    client = Client(url, verbose=False)
    try:
        health = httpx.get(url + "healthz", timeout=10).json()
        assert health["status"] == "degraded"
        assert set(health["unavailable"]) == {"retinaface_mobilenet0.25.fp32_onnx", "retinaface_slim.fp32_onnx"}
        assert "2 of 10 cards unavailable" in health["tasks_losing"]["face_detection"]
        assert sorted(health["missing_model_files"]) == sorted(NO_PUBLIC_DOWNLOAD)
        photo = client.predict(handle_file(str(PHOTO)), *DEFAULTS, "yolox_nano.fp32_onnx", 0.3, 0.45,
                               api_name="/classify")
        assert photo[2]["label"] and photo[3]["label"] and "rebuilt" in photo[8]
        config = httpx.get(url + "config", timeout=10).text
        assert "RetinaFace-1MB slim (unavailable here)" in config
        with pytest.raises(AppError, match=r"RetinaFace-1MB slim \(fp32\) is not available on this server") as refused:
            client.predict(handle_file(str(GROUP)), "RetinaFace-1MB slim", *FACES[1:], api_name="/find_faces")
        assert str(SHARED) not in str(refused.value) and "/tmp" not in str(refused.value)
    finally:
        client.close()
        demo.close()
