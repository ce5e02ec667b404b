"""Evaluate every model on labeled photos; write the CSV the Models tab reads and the README's model table.

    python -m pipelines.lab.evaluate                       # every model, ../shared/eval
    python -m pipelines.lab.evaluate --cards efficientnet_lite0.int8_static_onnx --eval-dir ../shared/eval

Per model: size on disk, parameters and multiply-adds by layer type (from the graph), its task's figure on
the task's labeled photos, for derived cards how far they stay from their fp32 parent, and host latency
(median and p90 of warm runs of the model itself) at 1 and 2 threads.
- classifiers and scene models: top-1 / top-5; derived: the share of photos with the parent's top-1 and the
  mean cosine of their output vectors.
- object detectors: mAP@0.5 on the COCO photos (detections over 0.01).
- face detectors (a row per detector: MTCNN is three files): recall of the annotated faces of the group
  photos at IoU 0.4 (min face 20 px) and the detections that match no face; latency per photo.
- face embedders: balanced accuracy of same/different-person decisions on every pair of the LFW photos
  (10-fold, each fold judged at the threshold chosen on the others); derived: the share of pairs decided as
  the parent decides them and the mean cosine of their embeddings; latency per face.
Rows named with --cards replace theirs; the other rows are kept.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from models.catalog import ModelCard
from models.graph_stats import LAYER_TYPES, graph_stats
from models.hub import ModelHub
from pipelines.common.calibration import sample_photo_paths
from pipelines.common.eval_sets import eval_dir
from pipelines.common.hub import open_hub
from pipelines.common.ops import agreement
from pipelines.common.preprocess import to_tensor
from pipelines.common.timing import StageLatency, call_latency, time_variant
from pipelines.lab.datasets import face_group_photos, imagenet_photos, places365_photos
from pipelines.lab.metrics import coco_map50, evaluate, face_recall
from pipelines.lab.records import DEFAULT_CSV, CardEvaluation, read_evaluations, write_evaluations
from pipelines.lab.report import markdown_table, update_readme
from pipelines.vision.classification import Classifier

DEFAULT_EVAL = eval_dir()
EVAL_SETS = {"classification": "imagenet_val1300", "scene": "places_miniplaces", "object_detection": "coco",
             "face_detection": "faces_groups", "face_embedding": "faces_lfw"}
METRICS = {"classification": "top-1 %", "scene": "top-1 %", "object_detection": "mAP@0.5",
           "face_detection": "faces found %", "face_embedding": "balanced pair accuracy %"}
SMALL_FACES = 20  # px: the group photos' faces are small


def _progress(desc: str, show: bool):
    if not show:
        return iter
    try:
        from tqdm import tqdm
    except ImportError:  # the bar is a convenience; the work is the same without it
        return iter
    return lambda items: tqdm(items, desc=desc, unit="photo", leave=False, file=sys.stderr)


def _photo(stem: str = "coffee") -> Image.Image:
    with Image.open(next(p for p in sample_photo_paths() if p.stem == stem)) as photo:
        return photo.convert("RGB")


def _shape_row(models: list[tuple[ModelCard, Path]]) -> dict:
    """Size, parameters, multiply-adds and their shares per layer type, over the model's files. A model with
    a file that takes any input size (MTCNN's P-Net runs on every level of an image pyramid) has no one figure
    of multiply-adds: 0, shown as "varies"."""
    size = round(sum(path.stat().st_size for _, path in models) / 1e6, 3)
    open_size = any(card.input.height == 0 for card, _ in models)
    stats = [graph_stats(path, card.runtime, (1, 12, 12, 3) if card.input.layout == "NHWC" else (1, 3, 12, 12))
             if card.input.height == 0 else graph_stats(path, card.runtime) for card, path in models]
    params, macs = sum(s.params for s in stats), 0 if open_size else sum(s.macs for s in stats)
    row = {"size_mb": size, "params": params, "macs": macs}
    for layer_type in LAYER_TYPES:
        layer_macs = sum(s.share(layer_type)[0] * s.macs for s in stats)
        layer_params = sum(s.share(layer_type)[1] * s.params for s in stats)
        row[f"macs_{layer_type}_pct"] = round(100 * layer_macs / macs, 2) if macs else 0.0
        row[f"params_{layer_type}_pct"] = round(100 * layer_params / params, 2) if params else 0.0
    return row


def _row(card: ModelCard, models: list[tuple[ModelCard, Path]], photos: int, score: float, runs: int,
         latency: Callable[[int], StageLatency], name: str | None = None, **extra) -> CardEvaluation:
    one, two = latency(1), latency(2)
    return CardEvaluation(
        card=name or card.name, task=card.task, model=card.display, variant=card.variant, runtime=card.runtime,
        precision=card.precision, derived_from=card.derived_from or "", license=card.license,
        **_shape_row(models), eval_set=EVAL_SETS[card.task], photos=photos, metric=METRICS[card.task],
        score=round(score, 3), top5_pct=extra.get("top5_pct"), agreement_pct=extra.get("agreement_pct"),
        cosine=extra.get("cosine"), false_positives=extra.get("false_positives"),
        latency_1t_ms=round(one.median_ms, 3), latency_1t_p90_ms=round(one.p90_ms, 3),
        latency_2t_ms=round(two.median_ms, 3), latency_2t_p90_ms=round(two.p90_ms, 3), latency_runs=runs)


def _classifier(hub, card, folder, runs, parent, show):
    classifier = Classifier(hub.load(card, threads=2))
    photos = imagenet_photos(folder) if card.task == "classification" else places365_photos(folder)
    accuracy = evaluate(lambda image: classifier.run(image)[0], photos, keep_scores=True,
                        progress=_progress(card.name, show))
    extra = {}
    if parent is not None:
        agreed = agreement(accuracy.scores, parent)
        extra = {"agreement_pct": round(100 * agreed.same_top1, 2), "cosine": round(agreed.mean_cosine, 5)}
    image = _photo()

    def latency(threads: int) -> StageLatency:
        timed = Classifier(hub.load(card, threads))
        return time_variant(lambda: timed(image).timings, card.name, threads, runs=runs, warmup=5).stage("inference")

    row = _row(card, [(card, hub.load(card).file.path)], accuracy.count, 100 * accuracy.top1, runs, latency,
               top5_pct=round(100 * accuracy.top5, 3), **extra)
    return row, accuracy.scores


def _object_detector(hub, card, folder, runs, parent, show):
    from pipelines.vision.objects import ObjectDetector

    detector = ObjectDetector(hub.load(card, threads=2))
    score = 100 * coco_map50(lambda image: detector(image, score_threshold=0.01).detections, folder)
    image = _photo("astronaut")

    def latency(threads: int) -> StageLatency:
        timed = ObjectDetector(hub.load(card, threads))
        return time_variant(lambda: timed(image).timings, card.name, threads, runs=runs, warmup=3).stage("inference")

    photos = len(list((folder / "images").iterdir()))
    return _row(card, [(card, hub.load(card).file.path)], photos, score, runs, latency), None


def _embedder(hub, card, folder, runs, parent, show, faces_cache={}):
    from pipelines.faces.verification import (
        balanced_accuracy,
        best_threshold,
        cross_validated_accuracy,
        labeled_faces,
        pair_similarities,
    )
    from pipelines.vision.face_embedding import Embedder

    if folder not in faces_cache:  # the faces are detected and aligned once for every embedder
        faces_cache[folder] = labeled_faces(hub, folder)
    faces = faces_cache[folder]
    vectors = Embedder(hub.load(card, threads=2))(faces.crops).vectors
    similarities, same = pair_similarities(vectors, faces.labels)
    score = 100 * cross_validated_accuracy(similarities, same, score=balanced_accuracy)
    extra = {}
    if parent is not None:
        parent_similarities, _ = pair_similarities(parent, faces.labels)
        decided = similarities >= best_threshold(similarities, same)
        parent_decided = parent_similarities >= best_threshold(parent_similarities, same)
        extra = {"agreement_pct": round(100 * float(np.mean(decided == parent_decided)), 2),
                 "cosine": round(float(np.mean(np.sum(vectors * parent, 1))), 5)}
    crop = faces.crops[:1]

    def latency(threads: int) -> StageLatency:  # one face, the model alone
        model = hub.load(card, threads)
        tensor = to_tensor(crop, card.input)
        return call_latency(lambda: model.backend.run(tensor), runs)

    row = _row(card, [(card, hub.load(card).file.path)], len(faces.labels), score, runs, latency, **extra)
    return row, vectors


EVALUATORS = {"classification": _classifier, "scene": _classifier, "object_detection": _object_detector,
              "face_embedding": _embedder}


def evaluate_card(hub: ModelHub, card: ModelCard, eval_dir: Path, runs: int = 20, parent_outputs=None,
                  show_progress: bool = False) -> tuple[CardEvaluation, object]:
    """A card's row, and the outputs its derived cards are compared with."""
    return EVALUATORS[card.task](hub, card, eval_dir / EVAL_SETS[card.task], runs, parent_outputs, show_progress)


def evaluate_face_detector(hub: ModelHub, display: str, eval_dir: Path, runs: int = 20) -> CardEvaluation:
    """One row per detector (display name): MTCNN's three stage files counted together."""
    from pipelines.vision.face_detection import DetectorOptions, load_detector

    options = DetectorOptions(min_face=SMALL_FACES)
    detector = load_detector(hub, display, threads=2)
    photos = face_group_photos(eval_dir / EVAL_SETS["face_detection"])
    result = face_recall(lambda image: detector(image, options).faces, photos)
    cards = hub.store.catalog.variants("face_detection", display)
    image = _photo("astronaut")

    def latency(threads: int) -> StageLatency:
        timed = load_detector(hub, display, threads)
        return call_latency(lambda: timed(image, options), runs)

    return _row(cards[0], [(c, hub.load(c).file.path) for c in cards], result.faces, 100 * result.recall, runs, latency,
                name=display, false_positives=result.false_positives)


def evaluate_cards(hub: ModelHub, cards: list[ModelCard], eval_dir: Path, runs: int = 20,
                   show_progress: bool = False) -> list[CardEvaluation]:
    """Parents are evaluated before their derived cards, so they are compared on the same photos."""
    catalog = hub.store.catalog
    wanted = {c.name for c in cards}
    order = [c for c in catalog if c.task in EVALUATORS and
             (c.name in wanted or any(d.derived_from == c.name for d in cards))]
    outputs, results = {}, []
    for card in order:
        parent = outputs.get(card.derived_from) if card.derived_from else None
        result, outputs[card.name] = evaluate_card(hub, card, eval_dir, runs, parent, show_progress)
        if card.name in wanted:
            results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", nargs="*", help="card names, or face detectors' names (default: every model)")
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL,
                        help="folder holding the labeled sets (labels.csv + images/)")
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="results, read by the Models tab")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    parser.add_argument("--readme", type=Path, help="replace the README's model table with the results")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per latency figure")
    args = parser.parse_args(argv)

    hub = open_hub()
    catalog = hub.store.catalog
    detectors = catalog.displays("face_detection")
    names = args.cards if args.cards is not None else [c.name for c in catalog if c.task in EVALUATORS] + list(detectors)
    unknown = [n for n in names if n not in detectors and n not in {c.name for c in catalog}]
    if unknown:
        parser.error(f"unknown cards: {', '.join(unknown)}")
    start = time.perf_counter()
    fresh = evaluate_cards(hub, [catalog[n] for n in names if n not in detectors], args.eval_dir, args.runs,
                           show_progress=sys.stderr.isatty())
    fresh += [evaluate_face_detector(hub, n, args.eval_dir, args.runs) for n in names if n in detectors]
    elapsed = time.perf_counter() - start
    merged = {**read_evaluations(args.csv), **{r.card: r for r in fresh}}
    order = [c.name for c in catalog] + list(detectors)
    rows = [merged[name] for name in dict.fromkeys(order) if name in merged]
    write_evaluations(rows, args.csv)
    table = markdown_table(rows)
    if args.markdown:
        args.markdown.write_text(table + "\n", encoding="utf-8")
    if args.readme:
        update_readme(args.readme, table)
    print(table)
    print(f"\nevaluated {len(fresh)} models in {elapsed:.1f} s; results in {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
