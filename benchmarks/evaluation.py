"""How long a full evaluation of the catalog takes, against what the Models tab does per view (read the
cached results and build its rows), measured side by side in one run.

    MVL_MODEL_DIRS=../shared/models python benchmarks/evaluation.py [--eval-dir ../shared/eval]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.common.hub import open_hub  # noqa: E402
from pipelines.lab.evaluate import DEFAULT_EVAL, EVALUATORS, evaluate_cards  # noqa: E402
from pipelines.lab.records import read_evaluations  # noqa: E402
from ui.format import TASK_TITLES, model_rows  # noqa: E402 (pure: no gradio)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per latency figure")
    args = parser.parse_args()

    hub = open_hub()
    catalog = hub.store.catalog
    start = time.perf_counter()
    results = evaluate_cards(hub, [c for c in catalog if c.task in EVALUATORS], args.eval_dir, args.runs)
    full = time.perf_counter() - start

    views = 50
    start = time.perf_counter()
    for _ in range(views):
        cached = read_evaluations()
        rows = [row for task in TASK_TITLES for row in model_rows(catalog, cached, task)]
    per_view = (time.perf_counter() - start) / views

    photos = sum(r.photos for r in results)
    print("| what | seconds |")
    print("|---|---|")
    print(f"| full evaluation of {len(results)} cards ({photos} photo runs, latency at 1 and 2 threads) | {full:.1f} |")
    print(f"| one Models tab view: read the cache, build {len(rows)} rows (mean of {views}) | {per_view:.5f} |")
    print(f"\nthe cache makes a view {full / per_view:,.0f}x cheaper than evaluating")


if __name__ == "__main__":
    main()
