"""Host latency of every card, measured side by side in one run; prints Markdown tables.

    python benchmarks/latency.py [--runs 50] [--cards NAME ...]

For each card: median and p90 of the pipeline's inference stage at 1 and 2 threads; the ratio of that
stage to a bare runtime call on the same tensor (ONNX Runtime session.run / LiteRT set_tensor+invoke+
get_tensor, made without the project's code), runs interleaved so drift hits both alike; then the
speed-ups of derived precisions over their fp32 parent at 1 thread. Host figures only: never phone figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

for _var, _value in (("ORT_DISABLE_TELEMETRY", "1"),):
    os.environ.setdefault(_var, _value)

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.catalog import ModelCard, default_catalog  # noqa: E402
from models.hub import ModelHub  # noqa: E402
from pipelines.common.calibration import sample_photo_paths  # noqa: E402
from pipelines.common.hub import open_hub  # noqa: E402
from pipelines.vision.classification import Classifier  # noqa: E402

WARMUP = 5


class BareRun:
    """The runtime called directly on an already-encoded tensor: the floor a pipeline can reach."""

    def __init__(self, card: ModelCard, path: Path, threads: int, tensor: np.ndarray):
        if card.runtime == "onnx":
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as the backend
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            feed = {session.get_inputs()[0].name: tensor}
            self.run = lambda: session.run(None, feed)
        else:
            interpreter = Interpreter(model_path=str(path), num_threads=threads)
            interpreter.allocate_tensors()
            detail, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
            scale, zero_point = detail["quantization"]
            stored = np.clip(np.rint(tensor / scale) + zero_point, 0, 255).astype(detail["dtype"]) if scale else tensor

            def run():
                interpreter.set_tensor(detail["index"], stored)
                interpreter.invoke()
                return interpreter.get_tensor(out["index"])

            self.run = run


def _ms(fn) -> float:
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / 1e6


def measure(hub: ModelHub, card: ModelCard, threads: int, image: Image.Image, runs: int) -> dict[str, float]:
    """Pipeline inference stage and bare runtime call, interleaved."""
    classifier = Classifier(hub.load(card, threads))
    tensor = classifier.preprocess(image)
    bare = BareRun(card, classifier.backend.path, threads, tensor)
    for _ in range(WARMUP):
        classifier.infer(tensor)
        bare.run()
    pipeline_ms, bare_ms = [], []
    for _ in range(runs):
        pipeline_ms.append(classifier(image).timings.inference_ms)
        bare_ms.append(_ms(bare.run))
    return {
        "median": float(np.median(pipeline_ms)),
        "p90": float(np.percentile(pipeline_ms, 90)),
        "bare": float(np.median(bare_ms)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--cards", nargs="*", help="card names (default: every classifier and scene model)")
    args = parser.parse_args()

    catalog = default_catalog()
    cards = ([catalog[name] for name in args.cards] if args.cards
             else [c for c in catalog if c.task in ("classification", "scene")])  # what a Classifier runs
    hub = open_hub()
    with Image.open(next(p for p in sample_photo_paths() if p.stem == "coffee")) as photo:
        image = photo.convert("RGB")

    print(f"Host: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; onnxruntime "
          f"{ort.__version__}; {args.runs} warm runs after {WARMUP} warm-up runs; coffee sample photo.\n")
    print("| card | runtime | 1 thread median ms | p90 | 2 threads median ms | p90 | pipeline / bare (1 thr) | (2 thr) |")
    print("|---|---|---|---|---|---|---|---|")
    results: dict[tuple[str, int], dict[str, float]] = {}
    for card in cards:
        for threads in (1, 2):
            results[card.name, threads] = measure(hub, card, threads, image, args.runs)
        one, two = results[card.name, 1], results[card.name, 2]
        print(f"| {card.name} | {card.runtime} | {one['median']:.2f} | {one['p90']:.2f} | {two['median']:.2f} | "
              f"{two['p90']:.2f} | {one['median'] / one['bare']:.3f} | {two['median'] / two['bare']:.3f} |", flush=True)

    print("\nDerived precisions against their fp32 parent, inference stage at 1 thread (speed-up > 1: faster):\n")
    print("| derived card | parent | derived ms | parent ms | speed-up |")
    print("|---|---|---|---|---|")
    for card in cards:
        if card.is_derived and (card.derived_from, 1) in results:
            mine, parent = results[card.name, 1]["median"], results[card.derived_from, 1]["median"]
            print(f"| {card.name} | {card.derived_from} | {mine:.2f} | {parent:.2f} | {parent / mine:.2f}x |")
    print("\nfp16 here: ONNX Runtime's CPU kernels compute most operators in fp32, so an fp16 graph pays for casts;"
          " fp16 pays off on phone GPUs and NPUs, not on this CPU.")


if __name__ == "__main__":
    main()
