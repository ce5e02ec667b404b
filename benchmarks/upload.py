"""What the limited worker process adds to a normal upload on the Your-model tab: the same analysis (check,
graph statistics, top-5 on a photo, fp16 / int8 dynamic / int8 static derived and compared) in this
process and through the sandbox, side by side in one run; prints a Markdown table with the ratio.

    MVL_MODEL_DIRS=../shared/models python benchmarks/upload.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.store import ModelStore  # noqa: E402
from pipelines.common.calibration import sample_photo_paths  # noqa: E402
from pipelines.lab.custom_model import Form, analyse_upload  # noqa: E402
from pipelines.lab.sandbox import SandboxLimits, run_upload  # noqa: E402

LABELS = ROOT / "models" / "data" / "labels" / "coral_imagenet_labels.txt"


def timed(run) -> float:
    workdir = Path(tempfile.mkdtemp(prefix="mvl-upload-"))
    try:
        start = time.perf_counter()
        run(workdir)
        return time.perf_counter() - start
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    store = ModelStore.from_env()
    photo = next(p for p in sample_photo_paths() if p.stem == "coffee")
    limits = SandboxLimits.from_env()
    print(f"worker limits: {limits.describe()}; median of {args.repeats} runs each, interleaved\n")
    print("| model | in the server process s | in the limited worker s | worker / in-process |")
    print("|---|---|---|---|")
    for name, labels in (("mobilenet_v1_0.25_128.uint8_qat_tflite", LABELS), ("efficientnet_lite0.fp32_onnx", LABELS)):
        card = store.catalog[name]
        model = store.resolve(card).path
        form = Form(scaling="(x - 128) / 128  (TF quantized MobileNets)") if card.runtime == "tflite" else \
            Form(scaling="(x - 127.5) / 127.5  (-1..1)")
        inline, worker = [], []
        for _ in range(args.repeats):
            inline.append(timed(lambda w: analyse_upload(model, labels, photo, form, w, 1)))
            worker.append(timed(lambda w: run_upload(model, labels, photo, form, w, 1, limits)))
        a, b = statistics.median(inline), statistics.median(worker)
        print(f"| {name} | {a:.2f} | {b:.2f} | {b / a:.2f} |", flush=True)


if __name__ == "__main__":
    main()
