"""Run by tests/ui/test_serving.py in a fresh process: every outbound connection and name lookup that is not
loopback is refused and recorded from the first import on; then the app is built, launched and given a
request of every kind. Prints the recorded attempts as JSON on the last line."""

import json
import socket
import sys
from pathlib import Path

import egress_guard  # noqa: F401  (first: sockets are guarded before anything else is imported)

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
    print(json.dumps(egress_guard.ATTEMPTS))


if __name__ == "__main__":
    main()
