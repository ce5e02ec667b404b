"""Realistic photo streams with known trips, days and moments, to develop and test event splitting on.

What a phone gallery looks like (heavy-tailed gaps): bursts seconds apart, moments minutes to hours apart,
nights, photo-less days inside a trip, days to months between trips; trips abroad in another time zone, a
second trip sometimes a day after the first in another country; some cameras without OffsetTimeOriginal,
GPS on some photos only, some photos without any EXIF (web exports, named after the place); scene vectors
consistent per place (a place's photos scatter around its own Places365-like distribution).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from pipelines.common.photos import Capture

SCENES = 365
HOME_OFFSET = timedelta(hours=-4)
ABROAD_OFFSETS = (timedelta(hours=1), timedelta(hours=2), timedelta(hours=8), timedelta(hours=9),
                  timedelta(hours=-7), timedelta(hours=5, minutes=30))


@dataclass(frozen=True)
class SimulatedAlbum:
    captures: tuple[Capture, ...]
    names: tuple[str, ...]
    scenes: np.ndarray  # [photos, 365] probabilities
    trip: tuple[str, ...]
    day: tuple[str, ...]
    moment: tuple[str, ...]


def _place(rng: np.random.Generator) -> np.ndarray:
    """A place's scene distribution: most of its mass on a few Places365 classes."""
    weights = np.full(SCENES, 0.02)
    weights[rng.choice(SCENES, size=3, replace=False)] = (8.0, 3.0, 1.5)
    return rng.dirichlet(weights * 5)


def _photo_scene(rng: np.random.Generator, place: np.ndarray) -> np.ndarray:
    return rng.dirichlet(place * 60 + 1e-3)


@dataclass
class _Stream:
    rng: np.random.Generator
    captures: list
    names: list
    scenes: list
    trip: list
    day: list
    moment: list
    undated_share: float
    number: int = 1000

    def photo(self, local: datetime, offset: timedelta, has_offset: bool, gps, scene, labels, trip_name: str,
              index: int) -> None:
        if self.rng.random() < self.undated_share:
            self.captures.append(Capture())  # a web export: no EXIF at all, named after the place
            self.names.append(f"{trip_name}-{index:02d}.jpg")
        else:
            self.captures.append(Capture(local, offset if has_offset else None, "EXIF" if has_offset else "", gps))
            self.number += int(self.rng.integers(1, 3))
            self.names.append(f"IMG_{self.number:04d}.JPG")
        self.scenes.append(scene)
        for column, value in zip((self.trip, self.day, self.moment), labels):
            column.append(value)


def _trip(stream: _Stream, start: datetime, offset: timedelta, t: int, city: tuple[float, float]) -> datetime:
    """One trip from `start` (local wall clock); returns the local time of its last photo."""
    rng = stream.rng
    has_offset = rng.random() < 0.7  # a newer phone writes OffsetTimeOriginal, an older one does not
    gps_share = rng.choice([0.0, 0.4, 0.9])
    places = [_place(rng) for _ in range(int(rng.integers(2, 6)))]
    day_start, last, photo_index, day_number = start, start, 0, 0
    for _ in range(int(1 + rng.poisson(1.5))):
        day_number += 1
        clock = day_start.replace(hour=int(rng.integers(8, 11)), minute=int(rng.integers(0, 60)))
        for m in range(int(1 + rng.poisson(2.0))):
            place = places[int(rng.integers(len(places)))]
            where = (city[0] + rng.normal(0, 0.05), city[1] + rng.normal(0, 0.05))
            for _ in range(int(1 + rng.geometric(0.35))):
                gps = where if rng.random() < gps_share else None
                labels = (f"t{t}", f"t{t}/d{day_number}", f"t{t}/d{day_number}/m{m}")
                stream.photo(clock, offset, has_offset, gps, _photo_scene(rng, place), labels, f"trip{t}", photo_index)
                photo_index, last = photo_index + 1, clock
                clock += timedelta(seconds=float(rng.exponential(20) if rng.random() < 0.6 else rng.exponential(150)))
            clock += timedelta(minutes=float(30 + rng.exponential(90)))
            if clock.date() != day_start.date() or clock.hour >= 23:
                break
        # the next day of the trip with photos: tomorrow, or a day later (a day without photos)
        day_start = (day_start + timedelta(days=1 + int(rng.random() < 0.2))).replace(hour=0, minute=0)
    return last


def simulate_album(seed: int, trips: int = 5, undated_share: float = 0.1) -> SimulatedAlbum:
    rng = np.random.default_rng(seed)
    stream = _Stream(rng, [], [], [], [], [], [], undated_share)
    clock_utc = datetime(2024, 3, 1, 12, 0) + timedelta(days=int(rng.integers(0, 200)))
    offset = HOME_OFFSET
    for t in range(1, trips + 1):
        abroad = rng.random() < 0.4
        new_offset = ABROAD_OFFSETS[int(rng.integers(len(ABROAD_OFFSETS)))] if abroad else HOME_OFFSET
        city = (float(rng.uniform(-50, 60)), float(rng.uniform(-120, 140))) if abroad else (36.0, -82.0)
        if t > 1:  # days to weeks at home without photos; or, abroad, on to another country the next day
            next_country = new_offset != offset and abroad and rng.random() < 0.5
            clock_utc += timedelta(hours=float(rng.uniform(14, 30))) if next_country else \
                timedelta(days=float(2.2 + rng.lognormal(2.0, 0.8)))
        offset = new_offset
        last_local = _trip(stream, clock_utc + offset, offset, t, city)
        clock_utc = last_local - offset
    return SimulatedAlbum(tuple(stream.captures), tuple(stream.names), np.stack(stream.scenes), tuple(stream.trip),
                          tuple(stream.day), tuple(stream.moment))
