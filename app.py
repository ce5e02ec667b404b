"""Mobile Vision Lab: sets the telemetry variables, builds the UI, serves. `python app.py`, then open
http://127.0.0.1:7860."""

from __future__ import annotations

import os

# Before gradio, huggingface_hub or onnxruntime are imported: nothing calls home.
for _var, _value in (("GRADIO_ANALYTICS_ENABLED", "False"), ("HF_HUB_DISABLE_TELEMETRY", "1"), ("ORT_DISABLE_TELEMETRY", "1")):
    os.environ.setdefault(_var, _value)

import logging  # noqa: E402
import sys  # noqa: E402

from models.store import ModelStore  # noqa: E402
from ui.blocks import build_app  # noqa: E402
from ui.server import report_model_files, serve  # noqa: E402

__all__ = ["build_app", "serve"]


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    store = ModelStore.from_env()
    report_model_files(store)
    # a Space sets GRADIO_SERVER_NAME (0.0.0.0); anywhere else the app answers this machine only
    host = os.environ.get("MVL_HOST") or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    serve(build_app(store), host=host, port=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))


if __name__ == "__main__":
    main()
