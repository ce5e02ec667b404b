"""Face pipeline speed on this host, side by side in one run; prints Markdown tables.

    MVL_MODEL_DIRS=../shared/models python benchmarks/faces.py [--repeats 5]

1. Every detector on the group photos of ../shared/eval/faces_groups, per stage (median ms per photo), at
   the reference settings (shorter side 600 px, min face 96 px, MTCNN 0.6/0.7/0.7) and at min face 20 px.
2. Embedding throughput: faces per second one at a time, and in batches of 8 where the file lets its
   batch dimension grow (LiteRT resizes the input; an ONNX file with a fixed batch of 1 cannot).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.backends import BackendError  # noqa: E402
from models.hub import ModelHub  # noqa: E402
from pipelines.common.eval_sets import eval_dir  # noqa: E402
from pipelines.common.hub import open_hub  # noqa: E402
from pipelines.common.preprocess import to_tensor  # noqa: E402
from pipelines.vision.face_detection import DetectorOptions, load_detector  # noqa: E402
from pipelines.vision.face_embedding import align_face  # noqa: E402

DEFAULT_EVAL = eval_dir()


def detector_table(hub: ModelHub, photos: list[Image.Image], repeats: int) -> None:
    for label, options in (("reference settings (min face 96 px)", DetectorOptions()),
                           ("min face 20 px", DetectorOptions(min_face=20))):
        print(f"\n{label}, median ms per photo over {len(photos)} photos x {repeats}:\n")
        print("| detector | faces found | stages (median ms) | total |")
        print("|---|---|---|---|")
        for display in hub.store.catalog.displays("face_detection"):
            detector = load_detector(hub, display)
            for photo in photos:  # warm-up
                detector(photo, options)
            stages: dict[str, list[float]] = {}
            found = 0
            for _ in range(repeats):
                for photo in photos:
                    result = detector(photo, options)
                    found += len(result.faces)
                    for stage, ms in result.stage_ms.items():
                        stages.setdefault(stage, []).append(ms)
            medians = {stage: float(np.median(v)) for stage, v in stages.items()}
            shown = ", ".join(f"{stage} {ms:.1f}" for stage, ms in medians.items())
            print(f"| {display} | {found // repeats} | {shown} | {sum(medians.values()):.1f} |", flush=True)


def embedder_table(hub: ModelHub, crops: np.ndarray, repeats: int) -> None:
    print(f"\nEmbedding {len(crops)} aligned faces, {repeats} rounds, 1 thread:\n")
    print("| embedder | runtime | faces/s, one at a time | faces/s, batches of 8 |")
    print("|---|---|---|---|")
    for card in hub.store.catalog.for_task("face_embedding"):
        backend = hub.load(card, threads=1).backend
        tensor = to_tensor(crops, card.input)
        backend.run(tensor[:1])
        start = time.perf_counter()
        for _ in range(repeats):
            for i in range(len(tensor)):
                backend.run(tensor[i:i + 1])
        single = repeats * len(tensor) / (time.perf_counter() - start)
        try:
            backend.run(tensor[:8])
            start = time.perf_counter()
            for _ in range(repeats):
                for i in range(0, len(tensor) - 7, 8):
                    backend.run(tensor[i:i + 8])
            batched = f"{repeats * (len(tensor) // 8) * 8 / (time.perf_counter() - start):.0f}"
            backend.run(tensor[:1])  # back to batch 1 for anyone sharing this backend
        except BackendError:
            batched = "n/a: the file's batch is fixed at 1"
        print(f"| {card.name} | {card.runtime} | {single:.0f} | {batched} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    hub = open_hub()
    photos = [Image.open(p).convert("RGB") for p in sorted((args.eval_dir / "faces_groups" / "images").glob("*.jpg"))]
    print(f"Host: {os.cpu_count()} cores; detectors at 1 thread.")
    detector_table(hub, photos, args.repeats)
    mtcnn = load_detector(hub, "MTCNN (ONNX Runtime)")
    crops = np.stack([align_face(p, f) for p in photos for f in mtcnn(p, DetectorOptions(min_face=20)).faces])
    embedder_table(hub, crops[:24], args.repeats)


if __name__ == "__main__":
    main()
