"""Training and evaluating the interest profile's classifiers on labeled photos.

    python -m pipelines.album.interest_train train [--eval-dir ../shared/eval]   # writes models/data/interest/model.json
    python -m pipelines.album.interest_train evaluate LABELED_FOLDER              # labels.csv (filename, category) + images/

evaluate runs the labeled photos through the album, as `python -m pipelines.album` does, and counts a photo as
found where the profile lists it under its category: per category of the 16, recall and precision.

The labeled interest set is built from ../shared/eval class by class through the reviewed files in
models/data/interest/: ImageNet and MiniPlaces photos take their class's category, a COCO photo the category of
its largest labeled object ("none" where no category fits). It is split by a hash of each file's name into
train (60 %), validation (20 %) and test (20 %: the figures reported); train and validation are used together,
cross-fitted (regularisation, the sources' weights and the thresholds chosen on out-of-fold predictions). The
features are the album's own: every photo goes through the album's per-photo code.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from pipelines.album.interest import (
    CLASSES,
    FOLDS,
    FURTHER_PRECISION_TARGET,
    L2_GRID,
    MIN_PHOTOS,
    MODEL_JSON,
    PRECISION_TARGET,
    RECIPE_VERSION,
    SOURCES,
    SUBJECTS,
    InterestModel,
    category_masses,
    class_categories,
    fit_source,
    fuse,
)
from pipelines.album.ingest import AlbumError
from pipelines.album.profile import CATEGORIES, MIN_PHOTOS as PROFILE_MIN_PHOTOS, too_few_photos
from pipelines.common.eval_sets import eval_dir

DEFAULT_EVAL = eval_dir()


@dataclass(frozen=True)
class LabeledPhoto:
    path: Path
    category: str
    dataset: str

    @property
    def split(self) -> str:
        bucket = int(hashlib.sha256(f"{self.dataset}/{self.path.name}".encode()).hexdigest(), 16) % 10
        return "train" if bucket < 6 else "validation" if bucket < 8 else "test"


def interest_set(eval_dir: Path) -> list[LabeledPhoto]:
    imagenet, places, coco = (class_categories(s)[1] for s in ("imagenet", "scene", "objects"))

    def category(onehot: np.ndarray, index: int) -> str:
        return CLASSES[int(onehot[index].argmax())]

    photos = []
    with (eval_dir / "imagenet_val1300" / "labels.csv").open(newline="") as fh:
        photos += [LabeledPhoto(eval_dir / "imagenet_val1300" / "images" / r["filename"],
                                category(imagenet, int(r["class_index"])), "imagenet") for r in csv.DictReader(fh)]
    with (eval_dir / "places_miniplaces" / "labels.csv").open(newline="") as fh:
        photos += [LabeledPhoto(eval_dir / "places_miniplaces" / "images" / r["filename"],
                                category(places, int(r["places365_index"])), "places")
                   for r in csv.DictReader(fh) if r["places365_index"].strip()]
    with (eval_dir / "coco" / "labels.csv").open(newline="") as fh:
        boxes = list(csv.DictReader(fh))
    for name in sorted({b["filename"] for b in boxes}):
        mine = sorted((b for b in boxes if b["filename"] == name), key=lambda b: -(float(b["x2"]) - float(b["x1"]))
                      * (float(b["y2"]) - float(b["y1"])))
        named = [category(coco, int(b["class_id80"])) for b in mine]
        photos.append(LabeledPhoto(eval_dir / "coco" / "images" / name, next((c for c in named if c != "none"), "none"),
                                   "coco"))
    return photos


def album_scores(paths: list[Path], hub=None) -> dict[str, np.ndarray]:
    """Each photo's scene, object and ImageNet scores, exactly as the album computes them."""
    from pipelines.album.analysis import AlbumModels, PhotoResult
    from pipelines.album.ingest import AlbumItem
    from pipelines.common.hub import open_hub

    models = AlbumModels(hub or open_hub())
    results = [models.process(AlbumItem(p.name, p)) for p in paths]
    unreadable = [r.name for r in results if not isinstance(r, PhotoResult)]
    if unreadable:
        raise ValueError(f"cannot read {', '.join(unreadable[:5])}")
    return {"scene": np.stack([r.scene_probs for r in results]), "objects": np.stack([r.object_confidence for r in results]),
            "imagenet": np.stack([r.imagenet_probs for r in results])}


def _subset(scores: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {s: v[rows] for s, v in scores.items()}


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-12)))


def _out_of_fold(source: str, scores, y, rows, folds: np.ndarray):
    """The source's classifier on all rows, its L2 the one whose out-of-fold predictions fit best, and those
    predictions ([rows, CLASSES]: each photo's from a classifier fitted without its fold)."""
    masses, labels = category_masses(source, scores[source][rows]), y[rows]
    best = None
    for l2 in L2_GRID:
        predicted = np.zeros((len(rows), len(CLASSES)))
        for k in range(FOLDS):
            inside = folds != k
            predicted[~inside] = fit_source(masses[inside], labels[inside], l2).probabilities(masses[~inside])
        loss = _log_loss(predicted, labels)
        if best is None or loss < best[0]:
            best = (loss, l2, predicted)
    _, l2, predicted = best
    return fit_source(masses, labels, l2), l2, predicted


def balanced_accuracy(p: np.ndarray, y: np.ndarray, kinds: np.ndarray) -> float:
    """The seed's accuracy, averaged over every (kind of photo, category) present: the many scene photos of the
    labeled set do not outvote the close-ups of one subject, nor a common category a rare one."""
    predicted = p.argmax(1)
    cells = [(kind, k) for kind in np.unique(kinds) for k in np.unique(y[kinds == kind])]
    return float(np.mean([np.mean(predicted[(kinds == kind) & (y == k)] == k) for kind, k in cells]))


def _threshold(p: np.ndarray, truth: np.ndarray, kinds: np.ndarray, target: float) -> float | None:
    """The lowest score whose listing keeps held-out precision at target (None: it cannot). Precision is averaged
    over the kinds of photo listed, as the sources' weights are chosen: the many scene photos do not set the floor
    for close-ups of one subject, where a category is seen far more surely."""
    for t in sorted(set(np.round(p, 4)) | {0.5}):
        if t <= 0.05:
            continue
        shown = p >= t
        precision = [np.mean(truth[shown & (kinds == kind)]) for kind in np.unique(kinds[shown])]
        if precision and np.mean(precision) >= target:
            return float(t)
    return None


def labeled_scores(eval_dir: Path, hub=None, scores_cache: Path | None = None):
    """The labeled interest set and every photo's album scores (kept in scores_cache between runs when given)."""
    photos = interest_set(eval_dir)
    if scores_cache and scores_cache.is_file():
        scores = dict(np.load(scores_cache))
    else:
        scores = album_scores([p.path for p in photos], hub)
        if scores_cache:
            np.savez(scores_cache, **scores)
    return photos, scores


def fit(scores: dict[str, np.ndarray], photos: list[LabeledPhoto], rows: np.ndarray) -> InterestModel:
    """The seed's recipe on these rows (photos never reported on), cross-fitted: the rows are dealt into FOLDS folds
    and each photo gets every source's probabilities from classifiers fitted without its fold; the sources'
    weights, the floor and the thresholds are chosen on those out-of-fold predictions of all rows (five times the
    photos one validation split gives, so a weight is not set by a handful of close-ups), and the classifiers kept
    are fitted on all rows. The returned model has no measured figures yet."""
    y = np.array([CLASSES.index(p.category) for p in photos])
    folds = np.arange(len(rows)) % FOLDS  # rows come in set and name order: each fold gets a share of every set
    classifiers, l2s, per_source = {}, {}, {}
    for source in SOURCES:
        classifiers[source], l2s[source], per_source[source] = _out_of_fold(source, scores, y, rows, folds)
    grid = [w for w in itertools.product(np.round(np.arange(0, 1.01, 0.1), 1), repeat=3) if abs(sum(w) - 1) < 1e-9]
    kinds, truth = np.array([p.dataset for p in photos])[rows], y[rows]
    accuracy = {w: balanced_accuracy(fuse(per_source, dict(zip(SOURCES, w))), truth, kinds) for w in grid}
    best = max(grid, key=lambda w: (accuracy[w], -np.var(w)))  # ties: the more even blend
    weights = dict(zip(SOURCES, map(float, best)))
    fused = fuse(per_source, weights)
    # the strongest category: one floor for all, set where its listings keep the precision target
    top = fused.argmax(1)
    subject = top < len(SUBJECTS)
    floor = _threshold(fused[np.arange(len(top)), top][subject], (top == truth)[subject], kinds[subject],
                       PRECISION_TARGET)
    # a further category: its own threshold, where enough photos show it
    thresholds = {c: _threshold(fused[:, CLASSES.index(c)], truth == CLASSES.index(c), kinds, FURTHER_PRECISION_TARGET)
                  if np.sum(truth == CLASSES.index(c)) >= MIN_PHOTOS else None for c in SUBJECTS}
    recipe = {"version": RECIPE_VERSION, "l2": l2s, "folds": FOLDS, "precision_target": PRECISION_TARGET,
              "further_precision_target": FURTHER_PRECISION_TARGET, "out_of_fold_accuracy": accuracy[best]}
    return InterestModel(classifiers, weights, floor or 0.0, thresholds, {}, recipe)


def train(eval_dir: Path, hub=None, scores_cache: Path | None = None) -> tuple[InterestModel, list[LabeledPhoto], dict]:
    photos, scores = labeled_scores(eval_dir, hub, scores_cache)
    split = np.array([p.split for p in photos])
    model = fit(scores, photos, np.flatnonzero(split != "test"))
    recipe = {**model.recipe, "sets": ["imagenet_val1300", "places_miniplaces", "coco"],
              "photos": {k: int(np.sum(split == k)) for k in ("train", "validation", "test")},
              "cards": _album_cards(hub)}
    test = np.flatnonzero(split == "test")
    measured = measure(model, _subset(scores, test), [photos[i].category for i in test])
    close_ups = cross_validate(photos, scores)
    return replace(model, measured=measured, recipe=recipe, close_ups=close_ups), photos, scores


def cross_validate(photos: list[LabeledPhoto], scores: dict[str, np.ndarray], dataset: str = "imagenet",
                   folds: int = 5) -> dict[str, dict]:
    """Every photo of one labeled set judged by a model that never saw it: that set's photos are dealt into folds
    (in order), and for each fold the recipe runs on the train and validation photos outside it. For the close-ups
    of one subject, where the test split holds too few photos of most categories to say anything."""
    split = np.array([p.split for p in photos])
    mine = np.flatnonzero([p.dataset == dataset for p in photos])
    fold = np.full(len(photos), -1)
    fold[mine] = np.arange(len(mine)) % folds
    shown = np.zeros((len(photos), len(SUBJECTS)), bool)
    for k in range(folds):
        model = fit(scores, photos, np.flatnonzero((split != "test") & (fold != k)))
        rows = np.flatnonzero(fold == k)
        shown[rows] = model.listed(_subset(scores, rows))
    return _figures(shown[mine], np.array([photos[i].category for i in mine]))


def _album_cards(hub) -> dict[str, str]:
    from models.catalog import default_catalog

    catalog = hub.store.catalog if hub else default_catalog()
    return {task: catalog.default(task, "album") for task in ("scene", "object_detection", "classification")}


def measure(model: InterestModel, scores: dict[str, np.ndarray], categories: list[str]) -> dict[str, dict]:
    """Per category: of its photos, the share listed under it (recall); of those listed, the share right."""
    return _figures(model.listed(scores), np.array(categories))


def _figures(shown: np.ndarray, truth: np.ndarray, categories: tuple[str, ...] = SUBJECTS) -> dict[str, dict]:
    """shown: [photos, categories] bool; truth: each photo's category, or [photos, categories] bool (several)."""
    if truth.ndim == 1:
        truth = truth[:, None] == np.array(categories)[None]
    out = {}
    for k, c in enumerate(categories):
        hits, listed, positives = int(np.sum(shown[:, k] & truth[:, k])), int(shown[:, k].sum()), int(truth[:, k].sum())
        out[c] = {"photos": positives, "listed": listed, "precision": round(hits / listed, 3) if listed else None,
                  "recall": round(hits / positives, 3) if positives else None}
    return out


class LabelsError(ValueError):
    """A labeled folder cannot be read; the message says what is wrong."""


def read_labels(folder: Path) -> dict[str, set[str]]:
    """labels.csv of a labeled folder: each photo's path under images/ -> its categories (a row names one, or
    several separated by ';'; a photo on several rows has them all; case does not matter). "none": none of the 16."""
    known = {c.lower(): c for c in (*CATEGORIES, "none")}
    try:
        with (folder / "labels.csv").open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = {"filename", "category"} - set(reader.fieldnames or ())
            if missing:
                raise LabelsError(f"labels.csv has no {' or '.join(sorted(missing))} column (it needs filename, "
                                  "category)")
            rows = list(reader)
    except FileNotFoundError:
        raise LabelsError(f"no labels.csv in {folder} (columns filename, category; the photos under images/)") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise LabelsError(f"labels.csv is not a readable CSV file ({exc})") from None
    labels: dict[str, set[str]] = {}
    for line, row in enumerate(rows, start=2):
        name = (row["filename"] or "").strip()
        categories = {c.strip() for c in (row["category"] or "").split(";") if c.strip()}
        if not name or not categories:
            raise LabelsError(f"labels.csv line {line}: a filename and a category are needed")
        unknown = sorted(c for c in categories if c.lower() not in known)
        if unknown:
            raise LabelsError(f"labels.csv line {line}: unknown categor{'y' if len(unknown) == 1 else 'ies'} "
                              f"{', '.join(unknown)}; known: {', '.join(CATEGORIES)}, none")
        labels.setdefault(name, set()).update(known[c.lower()] for c in categories)
    if not labels:
        raise LabelsError("labels.csv lists no photo")
    return labels


@dataclass(frozen=True)
class FolderFigures:
    measured: dict[str, dict]  # per category of the 16: photos, listed, recall, precision
    evaluated: int  # photos judged
    left_out: tuple[tuple[str, str], ...]  # (filename, why)
    too_few: str  # the categories seen in too few photos to be in the profile, with their photos


def evaluate_folder(folder: Path, hub=None, workers: int | None = None) -> FolderFigures:
    """The labeled photos through the album (every photo's models, then the profile, as `python -m
    pipelines.album` makes it) and, per category, recall and precision of the profile's listings. A photo counts
    as listed under a category the profile shows (seen in at least PROFILE_MIN_PHOTOS photos), as a person
    reads it."""
    from pipelines.album.analysis import analyse_album
    from pipelines.album.ingest import gather
    from pipelines.common.hub import open_hub

    labels = read_labels(folder)
    images = (folder / "images").resolve()
    files, left_out = [], []
    for name in labels:
        path = (images / name).resolve()
        if not path.is_relative_to(images) or not path.is_file():
            left_out.append((name, "not found under images/"))
        else:
            files.append((name, path))
    if not files:
        raise LabelsError(f"none of the {len(labels)} photos of labels.csv is under {folder / 'images'}")
    album = gather(files, len(files))
    result = analyse_album(hub or open_hub(), album, workers)
    left_out += [(s.name, s.reason) for s in result.skipped]
    names = [p.name for p in result.photos]
    listed = result.profile.categories_per_photo(len(names))
    shown = np.array([[c in mine for c in CATEGORIES] for mine in listed], bool)
    truth = np.array([[c in labels[n] for c in CATEGORIES] for n in names], bool)
    return FolderFigures(_figures(shown, truth, CATEGORIES), len(names), tuple(left_out),
                         too_few_photos(result.profile, names))


def table(measured: dict[str, dict]) -> str:
    def pct(value) -> str:
        return "–" if value is None else f"{100 * value:.0f} %"

    lines = ["| category | photos | recall | precision | listed |", "|---|---|---|---|---|"]
    lines += [f"| {c} | {m['photos']} | {pct(m['recall'])} | {pct(m['precision'])} | {m['listed']} |"
              for c, m in measured.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    training = commands.add_parser("train", help="train on ../shared/eval and write the model file")
    training.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL)
    training.add_argument("--out", type=Path, default=MODEL_JSON)
    training.add_argument("--scores-cache", type=Path, help="keep the photos' scores here between runs (.npz)")
    evaluating = commands.add_parser("evaluate", help="per-category recall and precision on a labeled folder")
    evaluating.add_argument("folder", type=Path, help="labels.csv (filename, category: one of the 16, several "
                            "separated by ';', or none) and the photos under images/")
    args = parser.parse_args(argv)
    if args.command == "train":
        model, photos, _ = train(args.eval_dir, scores_cache=args.scores_cache)
        args.out.write_text(model.to_json(), encoding="utf-8")
        print(f"weights {model.weights}; regularisation {model.recipe['l2']}; out-of-fold accuracy "
              f"{model.recipe['out_of_fold_accuracy']:.3f}; photos {model.recipe['photos']}\n")
        print("test photos (never trained or tuned on):\n" + table(model.measured))
        print("\nImageNet close-ups, 5 folds (each judged by a model that never saw it):\n" + table(model.close_ups))
        print(f"\nwritten to {args.out}")
        return 0
    try:
        figures = evaluate_folder(args.folder)
    except (LabelsError, AlbumError) as exc:
        print(exc, file=sys.stderr)
        return 2
    for name, why in figures.left_out:
        print(f"left out {name}: {why}", file=sys.stderr)
    labeled = {c: m for c, m in figures.measured.items() if m["photos"]}
    unlabeled = [f"{c} {m['listed']}" for c, m in figures.measured.items() if m["listed"] and not m["photos"]]
    print(f"{figures.evaluated} photos through the album ({len(figures.left_out)} left out); a photo is found where "
          f"the profile lists it under its category:\n" + table(labeled))
    if figures.too_few:
        print(f"seen in fewer than {PROFILE_MIN_PHOTOS} photos, so not in the profile: {figures.too_few}")
    if unlabeled:
        print(f"listed, though no photo is labeled with them (name every category that applies, separated by ';', "
              f"for them to count as right): {', '.join(unlabeled)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
