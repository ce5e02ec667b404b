"""A photo stream split as people split their albums: trips, the days of each trip, the moments of each day;
photos without a capture time grouped apart, by their content and names, and never given a time.

Dated photos are walked in capture order (elapsed time from the EXIF offsets where known):
- trip: a new one starts after a gap of `trip_gap_hours` (48 h: how the labeled albums define a trip), or
  where the time zone changes (OffsetTimeOriginal, or the offset read from the GPS time stamp) after a gap of
  `zone_gap_hours`, or where consecutive GPS positions are `gps_km` apart after a gap of `gps_gap_hours`;
- day: the camera's local calendar date inside a trip;
- moment: inside a day, the seed's rule (a photo joins the moment when it was taken within `window` of one of
  its photos and their scene distance is under `scene_threshold`), and a new moment after a gap that is long
  for this album's own rhythm: the log of the gap at least `moment_k` above the mean log gap of its
  `moment_neighbours` neighbours on each side (Graham et al. 2002), and at least `moment_min_minutes`.
Undated photos keep their name (upload) order; consecutive ones with close scenes, or whose names share a
stem that is not a camera's generic prefix, form undated groups.

Scene distance (reference): d(p, q) = (1/N) sum_i (p_i - q_i)^2 / (p_i + q_i). Inside a moment, scene scores
are fused by their geometric mean, renormalised.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np

from pipelines.common.photos import Capture

WINDOW = timedelta(hours=1)
REFERENCE_THRESHOLD = 0.003  # the seed's ("about 0.003", for the scene model it used)
# The seed's threshold learned its way (`event_eval scenes`: albums permuted, 50 times) on the real labeled albums
# here, albums_dev's 15 labeled days and 96 MiniPlaces albums of one scene class: border F1 0.501, against 0.371 at
# 0.003. This scene model spreads its probability: photos of one place seconds apart are often 0.004 apart.
THRESHOLD = 0.0045
GENERIC_STEMS = {"img", "image", "dsc", "dscn", "dscf", "pxl", "p", "photo", "pic", "picture", "dcim", "mvimg",
                 "screenshot", "snapshot", "fullsizerender", "imag", "sam", "gopr", "dji"}


def scene_distance(p: np.ndarray, q: np.ndarray) -> float:
    total = p + q
    nonzero = total > 0
    return float(np.sum((p[nonzero] - q[nonzero]) ** 2 / total[nonzero]) / len(p))


def split_events(times: list[datetime | None], scenes: np.ndarray, window: timedelta = WINDOW,
                 threshold: float = THRESHOLD, breaks: Sequence[bool] | None = None) -> list[list[int]]:
    """The seed's rule: groups as lists of photo indices, in the given (capture) order. A photo without a
    time is judged by its scenes alone; where breaks[i] is set, photo i starts a group whatever its scenes."""
    events: list[list[int]] = []
    for i in range(len(scenes)):
        if events and not (breaks and breaks[i]) and any(
            (times[i] is None or times[j] is None or abs(times[i] - times[j]) <= window)
            and scene_distance(scenes[i], scenes[j]) < threshold
            for j in events[-1]
        ):
            events[-1].append(i)
        else:
            events.append([i])
    return events


def fuse_scenes(scenes: np.ndarray) -> np.ndarray:
    """Geometric mean of a group's scene-score vectors, renormalised to sum to 1."""
    logs = np.log(np.clip(scenes, 1e-12, None))
    fused = np.exp(logs.mean(0))
    return fused / fused.sum()


@dataclass(frozen=True)
class EventParams:
    trip_gap_hours: float = 48.0
    zone_gap_hours: float = 2.0
    gps_km: float = 300.0
    gps_gap_hours: float = 6.0
    window: timedelta = WINDOW
    scene_threshold: float = THRESHOLD
    moment_k: float = 2.0
    moment_neighbours: int = 10
    moment_min_minutes: float = 20.0
    # Without a time, no day or window bounds a wrong join: the undated keep the reference's stricter threshold
    undated_threshold: float = REFERENCE_THRESHOLD


@dataclass(frozen=True)
class Day:
    date: date | None  # the camera's local calendar date; None for undated groups
    moments: tuple[tuple[int, ...], ...]

    @property
    def photos(self) -> tuple[int, ...]:
        return tuple(i for moment in self.moments for i in moment)


@dataclass(frozen=True)
class Trip:
    days: tuple[Day, ...]
    dated: bool  # False: photos without a capture time, grouped by content and names alone

    @property
    def photos(self) -> tuple[int, ...]:
        return tuple(i for day in self.days for i in day.photos)

    @property
    def moments(self) -> tuple[tuple[int, ...], ...]:
        return tuple(m for day in self.days for m in day.moments)


def instant(capture: Capture, album_offset: timedelta) -> datetime:
    """A time comparable across the album: UTC where the offset is known, else the album's usual offset."""
    return capture.local - (capture.offset if capture.offset is not None else album_offset)


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


def _trip_starts(order: list[int], captures: Sequence[Capture], times: list[datetime], params: EventParams) -> list[bool]:
    starts, offset, place = [], None, None
    for k, i in enumerate(order):
        capture = captures[i]
        hours = (times[k] - times[k - 1]) / timedelta(hours=1) if k else math.inf
        zone_changed = capture.offset is not None and offset is not None and capture.offset != offset
        moved = capture.gps is not None and place is not None and haversine_km(place, capture.gps) >= params.gps_km
        starts.append(k == 0 or hours >= params.trip_gap_hours or (zone_changed and hours >= params.zone_gap_hours)
                      or (moved and hours >= params.gps_gap_hours))
        offset = capture.offset if capture.offset is not None else offset
        place = capture.gps or place
    return starts


def _long_for_the_album(times: list[datetime], params: EventParams) -> list[bool]:
    """Gap k (before photo k) is long for the album's rhythm (Graham et al. 2002's adaptive rule on log gaps)."""
    gaps = np.array([0.0] + [(b - a).total_seconds() for a, b in zip(times, times[1:])])
    logs = np.log1p(np.maximum(gaps, 0.0))
    long = []
    for k in range(len(times)):
        lo, hi = max(1, k - params.moment_neighbours), min(len(times), k + params.moment_neighbours + 1)
        neighbours = [logs[j] for j in range(lo, hi) if j != k]
        mean = float(np.mean(neighbours)) if neighbours else 0.0
        long.append(k > 0 and gaps[k] >= 60 * params.moment_min_minutes and logs[k] >= mean + params.moment_k)
    return long


def _moments(day: list[int], positions: dict[int, int], times: list[datetime], long: list[bool],
             scenes: np.ndarray, params: EventParams) -> tuple[tuple[int, ...], ...]:
    """The day's photos (in capture order) by the seed's rule, a gap long for the album starting a moment."""
    groups = split_events([times[positions[i]] for i in day], scenes[day], params.window, params.scene_threshold,
                          [long[positions[i]] for i in day])
    return tuple(tuple(day[k] for k in group) for group in groups)


def _dated_trips(dated: list[int], captures: Sequence[Capture], scenes: np.ndarray,
                 params: EventParams) -> list[Trip]:
    known = [c.offset for c in captures if c.offset is not None]
    album_offset = max(set(known), key=known.count) if known else timedelta(0)
    order = sorted(dated, key=lambda i: (instant(captures[i], album_offset), i))
    times = [instant(captures[i], album_offset) for i in order]
    starts, long = _trip_starts(order, captures, times, params), _long_for_the_album(times, params)
    positions = {i: k for k, i in enumerate(order)}
    trips: list[list[int]] = []
    for i, start in zip(order, starts):
        if start:
            trips.append([])
        trips[-1].append(i)
    result = []
    for photos in trips:
        by_day: dict[date, list[int]] = {}
        for i in photos:
            by_day.setdefault(captures[i].local.date(), []).append(i)
        result.append(Trip(tuple(Day(d, _moments(members, positions, times, long, scenes, params))
                                 for d, members in by_day.items()), dated=True))
    return result


def name_stem(name: str) -> str:
    """A file name without folders, extension, and trailing numbering: 'Monaco-03.jpg' -> 'monaco'."""
    base = re.split(r"[\\/]", name)[-1].rsplit(".", 1)[0].lower()
    return re.sub(r"[\s_\-.()]*\d+[\s_\-.()]*$", "", base).strip(" _-.")


def natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _undated_groups(undated: list[int], names: Sequence[str], scenes: np.ndarray, params: EventParams) -> list[Trip]:
    groups: list[list[int]] = []
    for i in sorted(undated, key=lambda i: (natural_key(names[i]), i)):
        stem = name_stem(names[i])
        same_name = bool(groups) and len(stem) >= 3 and stem not in GENERIC_STEMS and \
            name_stem(names[groups[-1][-1]]) == stem
        close = bool(groups) and any(scene_distance(scenes[i], scenes[j]) < params.undated_threshold
                                     for j in groups[-1])
        if same_name or close:
            groups[-1].append(i)
        else:
            groups.append([i])
    return [Trip((Day(None, (tuple(g),)),), dated=False) for g in groups]


def segment(captures: Sequence[Capture], names: Sequence[str], scenes: np.ndarray,
            params: EventParams = EventParams()) -> tuple[Trip, ...]:
    """Dated trips in time order, then undated groups in name order; every photo in exactly one moment."""
    dated = [i for i, c in enumerate(captures) if c.local is not None]
    undated = [i for i, c in enumerate(captures) if c.local is None]
    return tuple(_dated_trips(dated, captures, scenes, params) + _undated_groups(undated, names, scenes, params))


# -- scores -----------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class PairScore:
    """Pairwise: of the photo pairs put together, the share that belong together (precision), and of those
    that belong together, the share put together (recall)."""

    precision: float
    recall: float
    f1: float
    pairs: int = field(default=0, compare=False)


def pair_score(predicted: Sequence[Hashable], truth: Sequence[Hashable]) -> PairScore:
    p, t = np.asarray([hash(x) for x in predicted]), np.asarray([hash(x) for x in truth])
    first, second = np.triu_indices(len(p), k=1)
    together, belong = p[first] == p[second], t[first] == t[second]
    hits = int(np.sum(together & belong))
    precision = hits / int(together.sum()) if together.any() else 1.0
    recall = hits / int(belong.sum()) if belong.any() else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PairScore(precision, recall, f1, len(first))


def labels_of(trips: Sequence[Trip], count: int) -> tuple[list[str], list[str], list[str]]:
    """Per photo: its trip, day and moment as ids ('t3', 't3/d1', 't3/d1/m2'; undated groups 'u1')."""
    trip, day, moment = [""] * count, [""] * count, [""] * count
    dated = undated = 0
    for t in trips:
        if t.dated:
            dated += 1
            name = f"t{dated}"
        else:
            undated += 1
            name = f"u{undated}"
        for d_index, d in enumerate(t.days, 1):
            for m_index, m in enumerate(d.moments, 1):
                for i in m:
                    trip[i], day[i], moment[i] = name, f"{name}/d{d_index}", f"{name}/d{d_index}/m{m_index}"
    return trip, day, moment


@dataclass(frozen=True)
class AlbumScore:
    trips: PairScore
    days: PairScore
    trip_borders: BorderScore
    day_borders: BorderScore
    photos: int  # dated photos with a label


def score_album(trips: Sequence[Trip], captures: Sequence[Capture], truth_trip: Sequence[str],
                truth_day: Sequence[str]) -> AlbumScore:
    """Trip and day agreement on the dated, labeled photos, in capture order."""
    trip, day, _ = labels_of(trips, len(captures))
    order = [i for t in trips if t.dated for i in t.photos if truth_trip[i]]

    def runs(labels: Sequence[str]) -> set[int]:
        return {k for k in range(1, len(order)) if labels[order[k]] != labels[order[k - 1]]}

    return AlbumScore(
        pair_score([trip[i] for i in order], [truth_trip[i] for i in order]),
        pair_score([day[i] for i in order], [truth_day[i] for i in order]),
        border_score(runs(trip), runs(truth_trip), 0.0), border_score(runs(day), runs(truth_day), 0.0), len(order))


def learn_threshold(albums: list[np.ndarray], candidates: list[float], permutations: int = 20, seed: int = 0,
                    gap: timedelta = timedelta(minutes=10)) -> list[BorderScore]:
    """The seed's method for its scene threshold: concatenate labeled albums in random order and score how
    well each candidate recovers their borders. Albums are placed `gap` apart, inside the time window, so the
    borders must be found from the scenes. Returns the mean border score of every candidate."""
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


# d of two probability vectors is at most 2 / N (0.0055 over Places365's 365 scenes): nothing above splits
CANDIDATES = (0.0005, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.0035, 0.004, 0.0045, 0.005)
