"""Evaluate cards on labeled photos; write the CSV the Models tab reads and the README's model table.

    python -m pipelines.evaluate                       # every card, ../shared/eval
    python -m pipelines.evaluate --cards efficientnet_lite0.int8_static_onnx --eval-dir ../shared/eval

Per card: size on disk, parameters and multiply-adds by layer type (from the graph), top-1 / top-5 on
the task's labeled photos, for derived cards the agreement with the fp32 parent (same top-1, %) and the
mean cosine of their output vectors, and host latency (median of warm runs of the inference stage) at 1
and 2 threads. Cards named with --cards replace their rows; the other rows are kept.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from PIL import Image

from models.catalog import ModelCard
from models.graph_stats import LAYER_TYPES, graph_stats
from models.hub import ModelHub
from models.store import ModelStore
from pipelines.calibration import sample_photo_paths
from pipelines.classification import Classifier, load_model
from pipelines.evaluation import Accuracy, evaluate, imagenet_photos, places365_photos
from pipelines.timing import time_variant

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT / "models" / "data" / "evaluation.csv"
DEFAULT_EVAL = ROOT.parent / "shared" / "eval"
README_BEGIN, README_END = "<!-- model-table:begin -->", "<!-- model-table:end -->"
EVAL_SETS = {"classification": "imagenet_val1300", "scene": "places_miniplaces"}


@dataclass(frozen=True)
class CardEvaluation:
    card: str
    task: str
    model: str
    variant: str
    runtime: str
    precision: str
    derived_from: str  # "" for original files
    license: str
    size_mb: float
    params: int
    macs: int
    macs_conv_1x1_pct: float
    params_conv_1x1_pct: float
    macs_depthwise_pct: float
    params_depthwise_pct: float
    macs_conv_full_pct: float
    params_conv_full_pct: float
    macs_fully_connected_pct: float
    params_fully_connected_pct: float
    eval_set: str
    photos: int
    top1_pct: float
    top5_pct: float
    agreement_pct: float | None  # same top-1 as the fp32 parent; derived cards only
    cosine: float | None  # mean cosine of output vectors with the fp32 parent; derived cards only
    latency_1t_ms: float
    latency_2t_ms: float
    latency_runs: int


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
    classifier = Classifier(load_model(hub, card, threads))
    report = time_variant(lambda: classifier(image).timings, card.name, threads, runs=runs, warmup=5)
    return report.stage("inference").median_ms


def evaluate_card(hub: ModelHub, card: ModelCard, eval_dir: Path, runs: int = 20,
                  parent_scores: Accuracy | None = None, show_progress: bool = False) -> tuple[CardEvaluation, Accuracy]:
    model = load_model(hub, card, threads=2)
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
    agreement = cosine = None
    if parent_scores is not None:
        agreement = round(100 * float(np.mean(np.array(accuracy.predictions) == np.array(parent_scores.predictions))), 2)
        a, b = accuracy.scores, parent_scores.scores
        cosine = round(float(np.mean(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))), 5)
    with Image.open(next(p for p in sample_photo_paths() if p.stem == "coffee")) as photo:
        image = photo.convert("RGB")
    result = CardEvaluation(
        card=card.name, task=card.task, model=card.display, variant=card.variant, runtime=card.runtime,
        precision=card.precision, derived_from=card.derived_from or "", license=card.license,
        size_mb=round(model.file.path.stat().st_size / 1e6, 3), params=stats.params, macs=stats.macs, **shares,
        eval_set=EVAL_SETS[card.task], photos=accuracy.count, top1_pct=round(100 * accuracy.top1, 3),
        top5_pct=round(100 * accuracy.top5, 3), agreement_pct=agreement, cosine=cosine,
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


def _from_row(row: dict[str, str]) -> CardEvaluation:
    values = {}
    for f in fields(CardEvaluation):
        raw = row[f.name]
        if f.type in ("int",):
            values[f.name] = int(raw)
        elif f.type in ("float",):
            values[f.name] = float(raw)
        elif f.type.startswith("float |"):
            values[f.name] = float(raw) if raw else None
        else:
            values[f.name] = raw
    return CardEvaluation(**values)


def read_evaluations(path: Path = DEFAULT_CSV) -> dict[str, CardEvaluation]:
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as fh:
        return {row["card"]: _from_row(row) for row in csv.DictReader(fh)}


def write_evaluations(rows: list[CardEvaluation], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[f.name for f in fields(CardEvaluation)])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in asdict(row).items()})


def markdown_table(rows: list[CardEvaluation]) -> str:
    lines = [
        "| card | runtime | precision | size MB | params M | MACs M | eval photos | top-1 % | top-5 % | "
        "agrees with fp32 % | cosine | host ms 1 thr | 2 thr | license |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        license_ = "unclear: demo use only" if r.license.startswith("UNCLEAR") else r.license
        agreement = f"{r.agreement_pct:.1f}" if r.agreement_pct is not None else "–"
        cosine = f"{r.cosine:.4f}" if r.cosine is not None else "–"
        lines.append(
            f"| {r.card} | {r.runtime} | {r.variant} | {r.size_mb:.2f} | {r.params / 1e6:.3f} | {r.macs / 1e6:.1f} | "
            f"{r.photos} {r.eval_set} | {r.top1_pct:.1f} | {r.top5_pct:.1f} | {agreement} | {cosine} | "
            f"{r.latency_1t_ms:.2f} | {r.latency_2t_ms:.2f} | {license_} |"
        )
    return "\n".join(lines)


def update_readme(readme: Path, table: str) -> None:
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(README_BEGIN) + ".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{readme} has no {README_BEGIN} ... {README_END} section")
    readme.write_text(pattern.sub(lambda _: f"{README_BEGIN}\n{table}\n{README_END}", text), encoding="utf-8")


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

    hub = ModelHub(ModelStore.from_env())
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
