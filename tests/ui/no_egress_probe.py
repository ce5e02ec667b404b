"""Run by tests/test_serving.py in a fresh process: every outbound connection and name lookup that is not
loopback is refused and recorded from the first import on; then the app is built, launched and given a
request of every kind. Prints the recorded attempts as JSON on the last line."""

import json
import socket
import sys
from pathlib import Path

ATTEMPTS = []
_connect, _connect_ex, _lookup = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo


def _loopback(host) -> bool:
    return str(host) in ("localhost", "::1") or str(host).startswith("127.")


def _guard(sock, address):
    if sock.family != socket.AF_UNIX and isinstance(address, tuple) and not _loopback(address[0]):
        ATTEMPTS.append(str(address[0]))
        raise OSError(f"blocked: {address}")


socket.socket.connect = lambda s, a: _guard(s, a) or _connect(s, a)
socket.socket.connect_ex = lambda s, a: _guard(s, a) or _connect_ex(s, a)


def _getaddrinfo(host, *args, **kwargs):
    if host is not None and not _loopback(host):
        ATTEMPTS.append(str(host))
        raise socket.gaierror(f"blocked: {host}")
    return _lookup(host, *args, **kwargs)


socket.getaddrinfo = _getaddrinfo

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import app  # noqa: E402  (first: it switches telemetry off before gradio and onnxruntime load)
from gradio_client import Client, handle_file  # noqa: E402

from tests.graphs import tiny_classifier  # noqa: E402


def main() -> None:
    work = Path(sys.argv[1])
    eval_dir = Path(sys.argv[2])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = app.build_app()
    url = app.serve(demo, port=port, block=False, quiet=True)
    client = Client(url, verbose=False)
    photo = handle_file(str(sorted((eval_dir / "coco" / "images").glob("*.jpg"))[0]))
    group = handle_file(str(eval_dir / "faces_groups" / "images" / "2008_001322.jpg"))
    cards = ("mobilenet_v1_0.25_128.uint8_qat_tflite", "squeezenet1.1_places365.fp32_onnx", 1, 1)
    faces = ("MTCNN (ONNX Runtime)", "mobilefacenet.fp32_onnx", 20, 0.6, 0.7, 0.7, 600, 20, 1)
    try:
        client.predict(photo, *cards, "nanodet_m.fp32_onnx", 0.3, 0.45, api_name="/classify")
        client.predict(photo, *cards, api_name="/compare_precisions")
        client.predict(group, *faces, api_name="/find_faces")
        client.predict(1, "Ann", api_name="/enroll_face")
        key = client.predict(api_name="/save_gallery")
        client.predict(key, api_name="/load_gallery")
        client.predict(api_name="/export_gallery")
        client.predict([group, photo], *faces, api_name="/group_faces")
        client.predict([photo, group], None, 60, 0.003, 0.5, api_name="/analyse_album")
        model = tiny_classifier(work / "tiny.onnx")
        client.predict(handle_file(str(model)), None, photo, 32, 32, "RGB", "(x - 127.5) / 127.5  (-1..1)",
                       "shorter side, centre crop 87.5 %", "auto", 1, api_name="/run_uploaded_model")
        import httpx

        httpx.get(url + "healthz", timeout=10)
    finally:
        client.close()
        demo.close()
    print(json.dumps(ATTEMPTS))


if __name__ == "__main__":
    main()
