"""Face verification on labeled photos, and the match threshold the app uses for each embedder.

    python -m pipelines.faces.verification          # writes models/data/face_thresholds.csv

For every pair of photos of a labeled set (same person or not) the cosine similarity of their embeddings
is compared with a threshold. The app's threshold for an embedder is the one that maximises pair accuracy
on faces_lfw (the midpoint between the two similarities where the decision flips). The accuracy reported
is 10-fold cross-validated: each fold's pairs are judged with a threshold chosen on the other nine.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from models.catalog import ModelCard
from models.hub import ModelHub
from pipelines.common.eval_sets import eval_dir
from pipelines.common.hub import open_hub
from pipelines.faces.pipeline import FacePipeline
from pipelines.faces.thresholds import THRESHOLDS_CSV, Verification, write_thresholds
from pipelines.vision.face_detection import DetectorOptions
from pipelines.vision.face_embedding import Embedder

DEFAULT_EVAL = eval_dir()
CALIBRATION_SET = "faces_lfw"
OPTIONS = DetectorOptions(min_face=20)


@dataclass(frozen=True)
class LabeledFaces:
    crops: np.ndarray  # [N, 112, 112, 3] aligned
    labels: tuple[str, ...]
    undetected: int  # photos where no face was found: embedded as the whole photo resized


def portrait_faces(hub: ModelHub, paths, threads: int = 1, progress=None) -> tuple[np.ndarray, int]:
    """Each portrait's face nearest the centre, aligned ([N, 112, 112, 3]), and how many photos had none found
    (those are embedded whole, resized); `progress(done, total)` hears of each photo."""
    faces_of = FacePipeline.load(hub, hub.store.catalog.default("face_detection"), None, threads)
    crops, undetected = [], 0
    for done, path in enumerate(paths, 1):
        with Image.open(path) as photo:
            image = photo.convert("RGB")
        detections, aligned, _ = faces_of.detect_and_align(image, OPTIONS)
        if detections.faces:
            centre = np.array(image.size) / 2
            distance = [np.hypot((f.box[0] + f.box[2]) / 2 - centre[0], (f.box[1] + f.box[3]) / 2 - centre[1])
                        for f in detections.faces]
            crops.append(aligned[int(np.argmin(distance))])
        else:
            undetected += 1
            crops.append(np.asarray(image.resize((112, 112), Image.Resampling.BILINEAR)))
        if progress:
            progress(done, len(paths))
    return np.stack(crops), undetected


def labeled_faces(hub: ModelHub, folder: Path) -> LabeledFaces:
    """Each photo's face nearest the centre, aligned (the sets hold one person per photo)."""
    with (folder / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    crops, undetected = portrait_faces(hub, [folder / "images" / row["filename"] for row in rows])
    return LabeledFaces(crops, tuple(row["label"] for row in rows), undetected)


def pair_similarities(vectors: np.ndarray, labels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity and same-person flag of every unordered pair."""
    first, second = np.triu_indices(len(labels), k=1)
    names = np.asarray(labels)
    return np.sum(vectors[first] * vectors[second], 1), names[first] == names[second]


def best_threshold(similarities: np.ndarray, same: np.ndarray) -> float:
    """The threshold (same person when similarity >= it) with the best pair accuracy."""
    order = np.argsort(similarities)
    s, y = similarities[order], same[order]
    # threshold between s[i-1] and s[i]: pairs before i say "different", from i on "same"
    correct = np.concatenate([[0], np.cumsum(~y)]) + np.concatenate([np.cumsum(y[::-1])[::-1], [0]])
    i = int(np.argmax(correct))
    if i == 0:
        return float(s[0] - 1e-6)
    if i == len(s):
        return float(s[-1] + 1e-6)
    return float((s[i - 1] + s[i]) / 2)


def accuracy(similarities: np.ndarray, same: np.ndarray, threshold: float) -> float:
    return float(np.mean((similarities >= threshold) == same))


def balanced_accuracy(similarities: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """The mean of the share of same-person pairs accepted and of different-person pairs refused: a judge
    that says "different" to every pair scores 0.5 here, however few same-person pairs there are."""
    said_same = similarities >= threshold
    return float((np.mean(said_same[same]) + np.mean(~said_same[~same])) / 2)


def held_out_scores(similarities: np.ndarray, same: np.ndarray, fold_of: np.ndarray, score=accuracy) -> list[float]:
    """Each fold's pairs (`fold_of`: each pair's fold) judged with the threshold chosen on the other folds."""
    scores = []
    for fold in np.unique(fold_of):
        held = fold_of == fold
        threshold = best_threshold(similarities[~held], same[~held])
        scores.append(score(similarities[held], same[held], threshold))
    return scores


def cross_validated_accuracy(similarities: np.ndarray, same: np.ndarray, folds: int = 10, seed: int = 0,
                             score=accuracy) -> float:
    """Each fold's pairs judged with the threshold chosen on the other folds; `score` per fold, averaged.
    Folds are stratified so every fold holds both kinds of pair."""
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(same), int)
    for kind in (True, False):
        for fold, pairs in enumerate(np.array_split(rng.permutation(np.flatnonzero(same == kind)), folds)):
            fold_of[pairs] = fold
    return float(np.mean(held_out_scores(similarities, same, fold_of, score)))


def verify(hub: ModelHub, card: ModelCard, faces: LabeledFaces, dataset: str) -> Verification:
    vectors = Embedder(hub.load(card, threads=2))(faces.crops).vectors
    similarities, same = pair_similarities(vectors, faces.labels)
    return Verification(
        card=card.name, dataset=dataset, pairs=len(same), same_pairs=int(same.sum()),
        threshold=round(best_threshold(similarities, same), 4),
        cv_accuracy=round(cross_validated_accuracy(similarities, same), 4),
        same_mean=round(float(similarities[same].mean()), 4), different_mean=round(float(similarities[~same].mean()), 4),
        undetected=faces.undetected,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL)
    parser.add_argument("--csv", type=Path, default=THRESHOLDS_CSV)
    args = parser.parse_args(argv)
    hub = open_hub()
    faces = labeled_faces(hub, args.eval_dir / CALIBRATION_SET)
    results = [verify(hub, card, faces, CALIBRATION_SET) for card in hub.store.catalog.for_task("face_embedding")]
    write_thresholds(results, args.csv)
    print("| embedder | threshold | 10-fold accuracy | pairs (same) | same mean | different mean |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r.card} | {r.threshold:.3f} | {100 * r.cv_accuracy:.1f} % | {r.pairs} ({r.same_pairs}) | "
              f"{r.same_mean:.2f} | {r.different_mean:.2f} |")
    print(f"\nthresholds from {CALIBRATION_SET} ({len(faces.labels)} photos, {faces.undetected} without a detected face) "
          f"written to {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
