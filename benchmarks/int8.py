"""Every derived int8 static variant against its fp32 parent, side by side in one run: the model alone, warm
median at 1 and 2 threads on a real photo, and what the variant keeps of the parent's figure (from the lab's cache).

    MVL_MODEL_DIRS=../shared/models python benchmarks/int8.py [--runs 30]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.common.calibration import calibration_photos  # noqa: E402
from pipelines.common.hub import open_hub  # noqa: E402
from pipelines.common.preprocess import to_input_tensor  # noqa: E402
from pipelines.lab.quantization import inference_ms  # noqa: E402
from pipelines.lab.records import read_evaluations  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    hub = open_hub()
    cached = read_evaluations()
    print("| int8 static variant | kept in float | parent ms 1 thr | int8 ms 1 thr | speed-up | 2 thr | "
          "figure: parent -> int8 |")
    print("|---|---|---|---|---|---|---|")
    for card in hub.store.catalog:
        if card.recipe is None or card.recipe.kind != "int8_static":
            continue
        rows = {}
        # a real photo of the kind it was calibrated on (faces for a face embedder), as the pipeline feeds it
        tensor = to_input_tensor(calibration_photos(card.recipe.calibration)[0], card.input)  # the parent's contract
        for threads in (1, 2):
            for name in (card.derived_from, card.name):
                model = hub.load(name, threads)
                rows[(name, threads)] = inference_ms(model, tensor, args.runs)
        parent, mine = cached.get(card.derived_from), cached.get(card.name)
        figure = f"{parent.metric} {parent.score:.1f} -> {mine.score:.1f}" if parent and mine else "not evaluated"
        p1, q1, p2, q2 = (rows[(card.derived_from, 1)], rows[(card.name, 1)], rows[(card.derived_from, 2)],
                          rows[(card.name, 2)])
        print(f"| {card.name} | {len(card.recipe.keep_float)} tensors | {p1:.2f} | {q1:.2f} | {p1 / q1:.2f}x | "
              f"{p2 / q2:.2f}x | {figure} |", flush=True)


if __name__ == "__main__":
    main()
