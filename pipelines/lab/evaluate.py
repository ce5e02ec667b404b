"""Evaluate cards on labeled photos; write the CSV the Models tab reads and the README's model table.

    python -m pipelines.lab.evaluate                       # every card, ../shared/eval
    python -m pipelines.lab.evaluate --cards efficientnet_lite0.int8_static_onnx --eval-dir ../shared/eval

Per card: size on disk, parameters and multiply-adds by layer type (from the graph), top-1 / top-5 on
the task's labeled photos, for derived cards the agreement with the fp32 parent (same top-1, %) and the
mean cosine of their output vectors, and host latency (median of warm runs of the inference stage) at 1
and 2 threads. Cards named with --cards replace their rows; the other rows are kept.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from PIL import Image

from models.catalog import ModelCard
from models.graph_stats import LAYER_TYPES, graph_stats
from models.hub import ModelHub
from pipelines.common.calibration import sample_photo_paths
from pipelines.common.hub import open_hub
from pipelines.common.ops import agreement
from pipelines.common.timing import time_variant
from pipelines.lab.datasets import imagenet_photos, places365_photos
from pipelines.lab.metrics import Accuracy, evaluate
from pipelines.lab.records import (
    DEFAULT_CSV,
    CardEvaluation,
    read_evaluations,
    write_evaluations,
)
from pipelines.lab.report import markdown_table, update_readme
from pipelines.vision.classification import Classifier

DEFAULT_EVAL = Path(__file__).resolve().parents[3] / "shared" / "eval"
EVAL_SETS = {"classification": "imagenet_val1300", "scene": "places_miniplaces"}


def _photos(task: str, eval_dir: Path):
    folder = eval_dir / EVAL_SETS[task]
    return imagenet_photos(folder) if task == "classification" else places365_photos(folder)


def _progress(desc: str):
    try:
        from tqdm import tqdm
    except ImportError:  # the bar is a convenience; the work is the same without it
        return iter
    return lambda items: tqdm(items, desc=desc, unit="photo", leave=False, file=sys.stderr)


def _host_latency(hub: ModelHub, card: ModelCard, image: Image.Image, threads: int, runs: int) -> float:
    classifier = Classifier(hub.load(card, threads))
    report = time_variant(lambda: classifier(image).timings, card.name, threads, runs=runs, warmup=5)
    return report.stage("inference").median_ms


def evaluate_card(hub: ModelHub, card: ModelCard, eval_dir: Path, runs: int = 20,
                  parent_scores: Accuracy | None = None, show_progress: bool = False) -> tuple[CardEvaluation, Accuracy]:
    model = hub.load(card, threads=2)
    classifier = Classifier(model)
    photos = _photos(card.task, eval_dir)
    progress = _progress(card.name) if show_progress else iter
    accuracy = evaluate(lambda image: classifier.run(image)[0], photos, keep_scores=True, progress=progress)
    stats = graph_stats(model.file.path, card.runtime)
    shares = {}
    for layer_type in LAYER_TYPES:
        macs_share, params_share = stats.share(layer_type)
        shares[f"macs_{layer_type}_pct"] = round(100 * macs_share, 2)
        shares[f"params_{layer_type}_pct"] = round(100 * params_share, 2)
    agreement_pct = cosine = None
    if parent_scores is not None:
        agreed = agreement(accuracy.scores, parent_scores.scores)
        agreement_pct, cosine = round(100 * agreed.same_top1, 2), round(agreed.mean_cosine, 5)
    with Image.open(next(p for p in sample_photo_paths() if p.stem == "coffee")) as photo:
        image = photo.convert("RGB")
    result = CardEvaluation(
        card=card.name, task=card.task, model=card.display, variant=card.variant, runtime=card.runtime,
        precision=card.precision, derived_from=card.derived_from or "", license=card.license,
        size_mb=round(model.file.path.stat().st_size / 1e6, 3), params=stats.params, macs=stats.macs, **shares,
        eval_set=EVAL_SETS[card.task], photos=accuracy.count, top1_pct=round(100 * accuracy.top1, 3),
        top5_pct=round(100 * accuracy.top5, 3), agreement_pct=agreement_pct, cosine=cosine,
        latency_1t_ms=round(_host_latency(hub, card, image, 1, runs), 3),
        latency_2t_ms=round(_host_latency(hub, card, image, 2, runs), 3), latency_runs=runs,
    )
    return result, accuracy


def evaluate_cards(hub: ModelHub, cards: list[ModelCard], eval_dir: Path, runs: int = 20,
                   show_progress: bool = False) -> list[CardEvaluation]:
    """Parents are evaluated before their derived cards, so agreement is measured on the same photos."""
    catalog = hub.store.catalog
    wanted = {c.name for c in cards}
    order = [c for c in catalog if c.name in wanted or any(d.derived_from == c.name for d in cards)]
    scores: dict[str, Accuracy] = {}
    results = []
    for card in order:
        parent = scores.get(card.derived_from) if card.derived_from else None
        result, accuracy = evaluate_card(hub, card, eval_dir, runs, parent, show_progress)
        scores[card.name] = accuracy
        if card.name in wanted:
            results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", nargs="*", help="card names (default: every card)")
    parser.add_argument("--eval-dir", type=Path, default=Path(os.environ.get("MVL_EVAL_DIR", DEFAULT_EVAL)),
                        help="folder holding imagenet_val1300/ and places_miniplaces/ (labels.csv + images/)")
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="results, read by the Models tab")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    parser.add_argument("--readme", type=Path, help="replace the README's model table with the results")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per latency figure")
    args = parser.parse_args(argv)

    hub = open_hub()
    catalog = hub.store.catalog
    cards = [catalog[name] for name in args.cards] if args.cards else [c for c in catalog if c.task in EVAL_SETS]
    start = time.perf_counter()
    fresh = evaluate_cards(hub, cards, args.eval_dir, args.runs, show_progress=sys.stderr.isatty())
    elapsed = time.perf_counter() - start
    merged = {**read_evaluations(args.csv), **{r.card: r for r in fresh}}
    rows = [merged[c.name] for c in catalog if c.name in merged]
    write_evaluations(rows, args.csv)
    table = markdown_table(rows)
    if args.markdown:
        args.markdown.write_text(table + "\n", encoding="utf-8")
    if args.readme:
        update_readme(args.readme, table)
    print(table)
    print(f"\nevaluated {len(fresh)} cards in {elapsed:.1f} s; results in {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
