"""A stream of photos split into events, as the reference system does.

Walking in capture order, a photo joins the current event when it was taken within the time window of a
photo of that event AND the distance between their scene-score vectors is under the threshold; otherwise it
starts a new event. Distance (reference): d(p, q) = (1/N) sum_i (p_i - q_i)^2 / (p_i + q_i). Inside an event,
scene scores are fused by their geometric mean, renormalised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

WINDOW = timedelta(hours=1)
THRESHOLD = 0.003


def scene_distance(p: np.ndarray, q: np.ndarray) -> float:
    total = p + q
    nonzero = total > 0
    return float(np.sum((p[nonzero] - q[nonzero]) ** 2 / total[nonzero]) / len(p))


def split_events(times: list[datetime | None], scenes: np.ndarray, window: timedelta = WINDOW,
                 threshold: float = THRESHOLD) -> list[list[int]]:
    """Events as lists of photo indices, in the given (capture) order. A photo without a time is judged by
    its scenes alone."""
    events: list[list[int]] = []
    for i in range(len(scenes)):
        if events and any(
            (times[i] is None or times[j] is None or abs(times[i] - times[j]) <= window)
            and scene_distance(scenes[i], scenes[j]) < threshold
            for j in events[-1]
        ):
            events[-1].append(i)
        else:
            events.append([i])
    return events


def fuse_scenes(scenes: np.ndarray) -> np.ndarray:
    """Geometric mean of an event's scene-score vectors, renormalised to sum to 1."""
    logs = np.log(np.clip(scenes, 1e-12, None))
    fused = np.exp(logs.mean(0))
    return fused / fused.sum()


@dataclass(frozen=True)
class BorderScore:
    threshold: float
    precision: float
    recall: float
    f1: float


def borders(events: list[list[int]]) -> set[int]:
    """Indices of the photos that start an event (the first photo excluded)."""
    return {event[0] for event in events[1:]}


def border_score(predicted: set[int], truth: set[int], threshold: float) -> BorderScore:
    hits = len(predicted & truth)
    precision = hits / len(predicted) if predicted else 1.0
    recall = hits / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return BorderScore(threshold, precision, recall, f1)


def learn_threshold(albums: list[np.ndarray], candidates: list[float], permutations: int = 20, seed: int = 0,
                    gap: timedelta = timedelta(minutes=10)) -> list[BorderScore]:
    """The seed's method: concatenate labeled albums in random order and score how well each candidate
    threshold recovers their borders. Albums are placed `gap` apart, inside the time window, so the borders
    must be found from the scenes. Returns the mean border score of every candidate."""
    rng = np.random.default_rng(seed)
    results = {t: [] for t in candidates}
    for _ in range(permutations):
        order = rng.permutation(len(albums))
        scenes = np.concatenate([albums[i] for i in order])
        truth, start = set(), 0
        for i in order[:-1]:
            start += len(albums[i])
            truth.add(start)
        base = datetime(2020, 1, 1)
        times = [base + gap * k for k in range(len(scenes))]  # evenly inside the window: time never splits
        for t in candidates:
            results[t].append(border_score(borders(split_events(times, scenes, WINDOW, t)), truth, t))
    return [BorderScore(t, float(np.mean([s.precision for s in r])), float(np.mean([s.recall for s in r])),
                        float(np.mean([s.f1 for s in r]))) for t, r in results.items()]


CANDIDATES = (0.0005, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.0075, 0.01)


def main(argv: list[str] | None = None) -> int:
    """python -m pipelines.album.events ALBUMS_FOLDER: learn the scene-distance threshold from labeled albums."""
    import argparse
    import sys
    from pathlib import Path

    from PIL import Image

    from pipelines.album.ingest import IMAGE_SUFFIXES
    from pipelines.common.hub import open_hub
    from pipelines.vision.classification import SceneRecognizer

    parser = argparse.ArgumentParser(description="Learn the event threshold by random permutation of albums: "
                                     "FOLDER has one sub-folder of photos per album.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--permutations", type=int, default=20)
    parser.add_argument("--candidates", type=float, nargs="*", default=list(CANDIDATES))
    args = parser.parse_args(argv)
    hub = open_hub()
    scene = SceneRecognizer(hub.load(hub.store.catalog.default("scene", "album"), 2))
    albums = []
    for folder in sorted(p for p in args.folder.iterdir() if p.is_dir()):
        photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if photos:
            albums.append(np.stack([scene(Image.open(p).convert("RGB")).probabilities for p in photos]))
    if len(albums) < 2:
        print("need at least two albums (sub-folders with photos)", file=sys.stderr)
        return 2
    scores = learn_threshold(albums, args.candidates, args.permutations)
    best = max(scores, key=lambda s: s.f1)
    print("| threshold | border precision | recall | F1 |\n|---|---|---|---|")
    for s in scores:
        mark = " (best)" if s is best else (" (reference)" if s.threshold == THRESHOLD else "")
        print(f"| {s.threshold:g} | {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f}{mark} |")
    print(f"\nlearned threshold {best.threshold:g} from {len(albums)} albums, {args.permutations} permutations")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
