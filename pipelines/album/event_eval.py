"""How well an album is split into trips and days, and the thresholds that split labeled albums best.

    python -m pipelines.album.event_eval evaluate ALBUM [ALBUM ...]   # labels.csv (filename, trip, day) + images/
    python -m pipelines.album.event_eval learn ALBUM [...] [--simulated 20] [--permutations 20]
    python -m pipelines.album.event_eval scenes FOLDER [FOLDER ...]  # the seed's scene threshold

evaluate: pairwise precision / recall / F1 and border F1 against the labeled trips and days, on the photos
with a capture time; photos without one are counted apart, with the times shown for them (none).
learn: the seed's random permutation of albums, at the trip level: the labeled trips (of the given albums,
and of simulated ones) are concatenated in random order, each kept whole with its own clock and time zone,
days to weeks apart at home or a day apart in another time zone, and every candidate trip gap is scored by
how well it recovers the trips and days.
scenes: the seed's random permutation of albums for its scene threshold: albums (each labeled day of a labeled
album, in capture order, or each sub-folder of a folder of albums) are concatenated in random order, evenly
inside the time window so that only the scenes can find their borders, and every candidate threshold is scored
by how well it recovers them.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import numpy as np

from pipelines.album.events import CANDIDATES, THRESHOLD, EventParams, learn_threshold, score_album, segment
from pipelines.album.ingest import AlbumError
from pipelines.album.simulate import SimulatedAlbum, simulate_album
from pipelines.common.photos import Capture

SCENE_SIDE = 448  # photos are decoded this large for the scene model (it reads 224 px)
TRIP_GAP_CANDIDATES = (18.0, 24.0, 30.0, 36.0, 42.0, 48.0, 60.0, 72.0, 96.0)


@dataclass(frozen=True)
class LabeledAlbum:
    name: str
    captures: tuple[Capture, ...]
    names: tuple[str, ...]
    scenes: np.ndarray
    trip: tuple[str, ...]  # "" where the photo has no label
    day: tuple[str, ...]


def from_simulation(album: SimulatedAlbum, name: str) -> LabeledAlbum:
    return LabeledAlbum(name, album.captures, album.names, album.scenes, album.trip, album.day)


def read_labeled(folder: Path, scene=None) -> LabeledAlbum:
    """labels.csv (filename, trip, day) and images/: EXIF read from each photo; scenes from `scene` (a
    SceneRecognizer) or zeros (trips and days do not use them). AlbumError says what cannot be read."""
    from PIL import Image

    from pipelines.common.photos import PhotoError, read_capture, read_photo

    try:
        with (folder / "labels.csv").open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        raise AlbumError(f"no labels.csv in {folder} (columns filename, trip, day; the photos under images/)") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise AlbumError(f"{folder / 'labels.csv'} is not a readable CSV file ({exc})") from None
    if not rows or "filename" not in rows[0]:
        raise AlbumError(f"{folder / 'labels.csv'} lists no photo (it needs a filename column)")
    captures, scenes = [], []
    for row in rows:
        path = folder / "images" / (row["filename"] or "")
        if not path.is_file():
            raise AlbumError(f"labels.csv names {row['filename']!r}, which is not under {folder / 'images'}")
        try:
            if scene:  # one read gives both: read_photo takes the capture from the same EXIF
                photo = read_photo(path, max_side=SCENE_SIDE)
                captures.append(photo.capture)
                scenes.append(scene(photo.image).probabilities)
            else:
                with Image.open(path) as image:
                    captures.append(read_capture(image.getexif()))
                scenes.append(np.zeros(365))
        except (OSError, PhotoError) as exc:
            raise AlbumError(f"labels.csv names {row['filename']!r}, which cannot be read as a photo ({exc})") from None
    return LabeledAlbum(folder.name, tuple(captures), tuple(r["filename"] for r in rows), np.stack(scenes),
                        tuple(r.get("trip", "") for r in rows), tuple(r.get("day", "") for r in rows))


def _units(album: LabeledAlbum) -> list[LabeledAlbum]:
    """Each labeled trip's dated photos, as a unit to permute."""
    units = []
    for trip in dict.fromkeys(t for t in album.trip if t):
        idx = [i for i, t in enumerate(album.trip) if t == trip and album.captures[i].local is not None]
        if idx:
            units.append(LabeledAlbum(trip, tuple(album.captures[i] for i in idx), tuple(album.names[i] for i in idx),
                                      album.scenes[idx], tuple(f"{album.name}/{trip}" for _ in idx),
                                      tuple(f"{album.name}/{album.day[i]}" for i in idx)))
    return units


def permuted_stream(units: list[LabeledAlbum], rng: np.random.Generator) -> LabeledAlbum:
    """Whole trips one after another in random order, each shifted as a block by whole days (its clock, time
    of day and time zone kept): at least 2 days to weeks apart, or from 14 h apart when the next trip is in
    another time zone."""
    captures, picked, previous_end, previous_offset = [], [], None, None
    for k in rng.permutation(len(units)):
        unit = units[k]
        start = min(c.local for c in unit.captures)
        offset = next((c.offset for c in unit.captures if c.offset is not None), None)
        if previous_end is None:
            shift = timedelta(0)
        else:
            other_zone = offset is not None and previous_offset is not None and offset != previous_offset
            gap = timedelta(hours=float(rng.uniform(14, 30))) if other_zone and rng.random() < 0.5 else \
                timedelta(days=float(2.2 + rng.lognormal(2.0, 0.8)))
            shift = timedelta(days=math.ceil((previous_end + gap - start) / timedelta(days=1)))
        shifted = [replace(c, local=c.local + shift) for c in unit.captures]
        previous_end, previous_offset = max(c.local for c in shifted), offset or previous_offset
        captures += shifted
        picked.append(unit)
    return LabeledAlbum("permutation", tuple(captures), tuple(n for u in picked for n in u.names),
                        np.concatenate([u.scenes for u in picked]), tuple(t for u in picked for t in u.trip),
                        tuple(d for u in picked for d in u.day))


@dataclass(frozen=True)
class GapScore:
    trip_gap_hours: float
    trip_f1: float
    day_f1: float


def learn(albums: list[LabeledAlbum], candidates=TRIP_GAP_CANDIDATES, permutations: int = 20,
          seed: int = 0) -> list[GapScore]:
    rng = np.random.default_rng(seed)
    units = [u for album in albums for u in _units(album)]
    scores: dict[float, list[tuple[float, float]]] = {c: [] for c in candidates}
    for _ in range(permutations):
        stream = permuted_stream(units, rng)
        for gap in candidates:
            trips = segment(stream.captures, stream.names, stream.scenes, EventParams(trip_gap_hours=gap))
            result = score_album(trips, stream.captures, stream.trip, stream.day)
            scores[gap].append((result.trips.f1, result.days.f1))
    return [GapScore(gap, float(np.mean([s[0] for s in r])), float(np.mean([s[1] for s in r])))
            for gap, r in scores.items()]


def _scene_model():
    from pipelines.common.hub import open_hub
    from pipelines.vision.classification import SceneRecognizer

    hub = open_hub()
    return SceneRecognizer(hub.load(hub.store.catalog.default("scene", "album"), 2))


def _evaluate(args) -> int:
    scene = _scene_model()
    albums = [read_labeled(folder, scene) for folder in args.albums]
    print("| album | dated photos | undated | trips: pair P / R / F1 | border F1 | days: pair P / R / F1 | border F1 |")
    print("|---|---|---|---|---|---|---|")
    for album in albums:
        s = score_album(segment(album.captures, album.names, album.scenes), album.captures, album.trip, album.day)
        undated = sum(c.local is None for c in album.captures)
        print(f"| {album.name} | {s.photos} | {undated} (shown with no time) | {s.trips.precision:.3f} / "
              f"{s.trips.recall:.3f} / {s.trips.f1:.3f} | {s.trip_borders.f1:.3f} | {s.days.precision:.3f} / "
              f"{s.days.recall:.3f} / {s.days.f1:.3f} | {s.day_borders.f1:.3f} |")
    return 0


def _learn(args) -> int:
    albums = [read_labeled(folder) for folder in args.albums]
    albums += [from_simulation(simulate_album(seed), f"simulated-{seed}") for seed in range(args.simulated)]
    scores = learn(albums, permutations=args.permutations)
    best = max(scores, key=lambda s: (s.trip_f1 + s.day_f1, -abs(s.trip_gap_hours - EventParams().trip_gap_hours)))
    print("| trip gap (hours) | trips pair F1 | days pair F1 |\n|---|---|---|")
    for s in scores:
        mark = " (best)" if s is best else (" (default)" if s.trip_gap_hours == EventParams().trip_gap_hours else "")
        print(f"| {s.trip_gap_hours:g} | {s.trip_f1:.3f} | {s.day_f1:.3f}{mark} |")
    print(f"\nlearned trip gap {best.trip_gap_hours:g} h from {len(albums)} albums, {args.permutations} permutations")
    return 0


def scene_albums(folder: Path, scene) -> list[np.ndarray]:
    """A folder's albums as scene-score arrays: a labeled album (labels.csv with a day column) gives each
    labeled day's dated photos in capture order; any other folder each sub-folder's photos in name order."""
    from pipelines.album.events import natural_key
    from pipelines.album.ingest import IMAGE_SUFFIXES
    from pipelines.common.photos import PhotoError, read_photo

    if (folder / "labels.csv").is_file():
        album = read_labeled(folder, scene)
        days: dict[str, list[int]] = {}
        for i in sorted((i for i, c in enumerate(album.captures) if c.local is not None and album.day[i]),
                        key=lambda i: album.captures[i].local):
            days.setdefault(album.day[i], []).append(i)
        return [album.scenes[idx] for idx in days.values()]
    albums = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        photos = sorted((p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                        key=lambda p: natural_key(p.name))
        vectors = []
        for photo in photos:
            try:
                vectors.append(scene(read_photo(photo, max_side=SCENE_SIDE).image).probabilities)
            except PhotoError as exc:
                raise AlbumError(f"{sub.name}/{photo.name}: {exc}") from None
        if vectors:
            albums.append(np.stack(vectors))
    return albums


def _scenes(args) -> int:
    scene = _scene_model()
    albums = []
    for folder in args.folders:
        if not folder.is_dir():
            raise AlbumError(f"no folder {folder}")
        albums += scene_albums(folder, scene)
    if len(albums) < 2:
        print("need at least two albums (labeled days of a labeled album, or sub-folders with photos)", file=sys.stderr)
        return 2
    scores = learn_threshold(albums, args.candidates, args.permutations)
    best = max(scores, key=lambda s: s.f1)
    print("| threshold | border precision | recall | F1 |\n|---|---|---|---|")
    for s in scores:
        mark = " (best)" if s is best else (" (default)" if s.threshold == THRESHOLD else "")
        print(f"| {s.threshold:g} | {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f}{mark} |")
    print(f"\nlearned threshold {best.threshold:g} from {len(albums)} albums, {args.permutations} permutations")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    evaluate = commands.add_parser("evaluate", help="trip and day scores on labeled albums")
    evaluate.add_argument("albums", type=Path, nargs="+")
    learning = commands.add_parser("learn", help="the trip gap by random permutation of labeled trips")
    learning.add_argument("albums", type=Path, nargs="*")
    learning.add_argument("--simulated", type=int, default=20, help="simulated albums added to the labeled ones")
    learning.add_argument("--permutations", type=int, default=20)
    scenes = commands.add_parser("scenes", help="the seed's scene threshold from albums")
    scenes.add_argument("folders", type=Path, nargs="+",
                        help="a labeled album (its labeled days are the albums), or a folder of albums (one "
                             "sub-folder each)")
    scenes.add_argument("--permutations", type=int, default=20)
    scenes.add_argument("--candidates", type=float, nargs="*", default=list(CANDIDATES))
    args = parser.parse_args(argv)
    try:
        return {"evaluate": _evaluate, "learn": _learn, "scenes": _scenes}[args.command](args)
    except AlbumError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
