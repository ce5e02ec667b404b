"""Every photo of an album through scene, objects and faces (in parallel), then trips, days and moments,
people, private photos and the interest profile."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np
from PIL import Image

from models.catalog import class_names
from models.hub import ModelHub
from pipelines.album import events as events_module
from pipelines.album import profile as profile_module
from pipelines.album.ingest import AlbumError, AlbumInput, AlbumItem, Skipped
from pipelines.album.interest import interest_model
from pipelines.common.photos import Capture, PhotoError, read_photo
from pipelines.faces.people import Person, frequent_photos, group_people
from pipelines.faces.pipeline import FacePipeline, match_threshold
from pipelines.vision.classification import Classifier, SceneRecognizer
from pipelines.vision.face_detection import DetectorOptions
from pipelines.vision.objects import SCORE_THRESHOLD, ObjectDetector

# Photos are decoded straight to the size MTCNN works at (its shorter side at most 600 px; a 12 MP JPEG through
# 1/4-scale draft, then one resize); every other model needs less.
MAX_SHORTER_SIDE = DetectorOptions().max_shorter_side
FREQUENT_PERSON = 2  # a person seen in at least this many photos is one who matters to the gallery's owner
# The detector's person boxes down to this score stay with the photo: the profile counts a face as people by the
# person box it lies in, not by a person seen anywhere else in the photo.
PERSON_BOX_FLOOR = 0.01


@dataclass(frozen=True)
class PhotoResult:
    name: str
    capture: Capture  # what EXIF says of when and where; never the file's own time
    scene_probs: np.ndarray = field(repr=False)
    top_scenes: tuple[str, ...]
    indoor: bool  # Places365's own indoor/outdoor labels, over the top-10 scenes
    imagenet_probs: np.ndarray = field(repr=False)
    object_confidence: np.ndarray = field(repr=False)
    objects: tuple[str, ...]
    face_vectors: np.ndarray = field(repr=False)
    face_crops: np.ndarray = field(repr=False)
    thumbnail: Image.Image = field(repr=False)
    decode_ms: float = 0.0
    inference_ms: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=dict, repr=False)  # decode, each model, the rest
    face_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 5), np.float32), repr=False)  # x1 y1 x2 y2
    # as fractions of the width and height, and the detector's score
    person_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 5), np.float32), repr=False)  # the same,
    # of the object detector's people at PERSON_BOX_FLOOR or more
    size: tuple[int, int] = (0, 0)  # as decoded (shorter side at most MAX_SHORTER_SIDE)

    @property
    def time(self) -> datetime | None:
        return self.capture.taken

    @property
    def time_source(self) -> str:
        return self.capture.source


@dataclass(frozen=True)
class TripSummary:
    """A trip (or a group of undated photos) as a person reads it."""

    name: str  # "t1".. for dated trips, "u1".. for undated groups
    trip: events_module.Trip  # its days and moments, as indices into AlbumResult.photos
    start: datetime | None  # local wall clock of its first and last photo (None: undated)
    end: datetime | None
    scenes: tuple[str, ...]  # dominant scenes of the fused scores
    objects: tuple[str, ...]
    cover: int  # the photo shown for it: of its photos, the one surest of its dominant scene (not merely the first)


@dataclass(frozen=True)
class AlbumResult:
    photos: tuple[PhotoResult, ...]  # dated ones in capture order, then undated ones in name order
    skipped: tuple[Skipped, ...]
    notes: tuple[str, ...]
    trips: tuple[TripSummary, ...]
    placement: tuple[tuple[str, str, str], ...]  # per photo: trip, day and moment ids
    people: tuple[Person, ...]
    private: tuple[int, ...]  # photos with a frequent person's face
    profile: profile_module.Profile
    event_profile: profile_module.Profile  # trips with at least one photo listed under each category
    weights: dict[str, float]  # the sources' weights the profile was fused with
    busy_days: BusyDays  # the days the reference counts, and under each category those showing it


@dataclass(frozen=True)
class BusyDays:
    """The reference's days that count for a profile: dated days holding at least the album's average number of
    photos per dated day (a day of one stray shot is not a day spent on an interest)."""

    average: float  # photos per dated day (0: no dated photos)
    dated_days: int
    days: tuple[events_module.Day, ...]  # in capture order
    profile: profile_module.Profile  # busy days with at least one photo listed under each category


def busy_days(trips, listed: np.ndarray, scores: np.ndarray) -> BusyDays:
    dated = [d for t in trips if t.dated for d in t.days]
    if not dated:
        return BusyDays(0.0, 0, (), profile_module.Profile((), ()))
    average = sum(len(d.photos) for d in dated) / len(dated)
    busy = tuple(d for d in dated if len(d.photos) >= average)
    per_day = np.stack([listed[list(d.photos)].any(0) for d in busy])
    day_scores = np.stack([scores[list(d.photos)].max(0) for d in busy])
    return BusyDays(average, len(dated), busy, profile_module.build_profile(per_day, day_scores, min_photos=1))


class AlbumModels:
    """The models an album is processed with (the catalog's album defaults); shared by the worker threads
    (backends are thread-safe)."""

    def __init__(self, hub: ModelHub, threads: int = 1):
        catalog = hub.store.catalog
        self.scene = SceneRecognizer(hub.load(catalog.default("scene", "album"), threads))
        self.imagenet = Classifier(hub.load(catalog.default("classification", "album"), threads))
        self.objects = ObjectDetector(hub.load(catalog.default("object_detection", "album"), threads))
        self.faces = FacePipeline.load(hub, catalog.default("face_detection", "album"),
                                       catalog.default("face_embedding", "album"), threads)
        self.scene_names = class_names(self.scene.card)

    def process(self, item: AlbumItem) -> PhotoResult | Skipped:
        """One photo: decoded at the size the models need, then every model; the stages timed."""
        clock = [time.perf_counter()]

        def lap() -> float:
            clock.append(time.perf_counter())
            return 1000 * (clock[-1] - clock[-2])

        try:
            photo = read_photo(item.read(), max_shorter_side=MAX_SHORTER_SIDE)
        except (PhotoError, AlbumError) as exc:
            return Skipped(item.name, str(exc))
        except Exception as exc:  # a damaged zip member or a file gone since the album was listed: errors vary
            return Skipped(item.name, f"damaged or unreadable ({type(exc).__name__}): not read")
        stages = {"decode": lap()}
        scene = self.scene(photo.image)
        stages["scene"] = lap()
        imagenet = self.imagenet.run(photo.image)[0]
        stages["imagenet"] = lap()
        objects = self.objects(photo.image, score_threshold=PERSON_BOX_FLOOR)  # what is shown: SCORE_THRESHOLD
        stages["objects"] = lap()
        faces = self.faces(photo.image, DetectorOptions())
        stages["faces"] = lap()
        thumbnail = photo.image.copy()
        # for display only: box-reduced by a whole factor first, a third of the time of one bilinear pass
        thumbnail.thumbnail((256, 256), Image.Resampling.BILINEAR, reducing_gap=1.0)
        stages["thumbnail"] = lap()
        return PhotoResult(
            item.name, photo.capture, scene.probabilities, tuple(p.label for p in scene.top[:3]),
            scene.environment == "indoor", imagenet,
            objects.class_confidence,
            tuple(dict.fromkeys(d.label for d in objects.detections if d.score >= SCORE_THRESHOLD)),
            faces.embeddings.vectors, faces.crops, thumbnail, stages["decode"],
            sum(v for k, v in stages.items() if k != "decode"), stages, _boxes(faces.detections.faces, photo.size),
            _boxes([d for d in objects.detections if d.class_index == profile_module.PERSON_CLASS], photo.size),
            photo.size,
        )


def _boxes(found, size: tuple[int, int]) -> np.ndarray:
    """Boxes (with their score) as fractions of the photo's width and height."""
    width, height = size
    return np.array([[f.box[0] / width, f.box[1] / height, f.box[2] / width, f.box[3] / height, f.score]
                     for f in found], np.float32).reshape(-1, 5)


class ThreadEngine:
    """The photos in threads of this process, sharing one set of models (the backends are thread-safe)."""

    def __init__(self, hub: ModelHub, workers: int | None = None):
        self.hub, self.workers = hub, workers or os.cpu_count() or 1

    def map(self, items):
        models = AlbumModels(self.hub)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            yield from pool.map(models.process, items)


class RememberingEngine:
    """Any engine, given the results of a session's last album: a photo among them (the same bytes, by sha256,
    whatever its name) is not processed again, so the album analysed again with other settings costs no model
    time. Afterwards `remembered` holds this album's photos alone, and `reused` says how many were not
    processed again."""

    def __init__(self, engine, remembered: dict[str, PhotoResult | Skipped] | None = None):
        self.engine, self.remembered, self.reused = engine, dict(remembered or {}), 0

    def _known(self, item: AlbumItem) -> bool:
        return item.sha256 is not None and item.sha256 in self.remembered

    def map(self, items):
        items = list(items)
        made = self.engine.map([item for item in items if not self._known(item)])
        kept = {}
        for item in items:
            if self._known(item):
                self.reused += 1
                result = replace(self.remembered[item.sha256], name=item.name)
            else:
                result = next(made)
            if item.sha256 is not None:
                kept[item.sha256] = result
            yield result
        self.remembered = kept


_WORKER_MODELS: AlbumModels | None = None


def _start_worker(model_dirs: list[str], cache_dir: str, allow_download: bool, nice: int) -> None:
    global _WORKER_MODELS
    os.nice(nice)
    from models.store import ModelStore
    from pipelines.common.hub import open_hub

    _WORKER_MODELS = AlbumModels(open_hub(ModelStore(model_dirs, cache_dir, allow_download)))


def _worker_process(item: AlbumItem) -> PhotoResult | Skipped:
    return _WORKER_MODELS.process(item)


class ProcessEngine:
    """The photos in worker processes at a lower priority (nice), each with its own models: an album uses the
    cores the interactive requests leave, and no Python lock is shared between the photos. The pool lives as
    long as the engine (the app keeps one), so models load once."""

    def __init__(self, store, workers: int | None = None, nice: int = 10):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.workers = workers or os.cpu_count() or 1
        self._pool = ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
            initargs=([str(d) for d in store.model_dirs], str(store.cache_dir), store.allow_download, nice))

    def map(self, items):
        yield from self._pool.map(_worker_process, items, chunksize=1)

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


def _process_all(engine, album: AlbumInput, progress) -> list[PhotoResult | Skipped]:
    done = []
    for i, result in enumerate(engine.map(album.items)):
        done.append(result)
        if progress:
            progress(i + 1, len(album.items))
    return done


def _display_order(photos: list[PhotoResult]) -> list[PhotoResult]:
    """Dated photos by capture time (UTC where the offset is known), then undated ones by name."""
    known = [p.capture.offset for p in photos if p.capture.offset is not None]
    album_offset = max(set(known), key=known.count) if known else timedelta(0)
    dated = sorted((p for p in photos if p.capture.local), key=lambda p: (events_module.instant(p.capture, album_offset), p.name))
    undated = sorted((p for p in photos if not p.capture.local), key=lambda p: events_module.natural_key(p.name))
    return dated + undated


def _summaries(photos: list[PhotoResult], trips, scenes: np.ndarray, objects: np.ndarray,
               scene_names: tuple[str, ...], object_labels: tuple[str, ...]) -> list[TripSummary]:
    summaries, names = [], events_module.labels_of(trips, len(photos))[0]
    for trip in trips:
        members = list(trip.photos)
        dominant = np.argsort(-events_module.fuse_scenes(scenes[members]))[:3]
        strongest = objects[members].max(0)
        locals_ = [photos[i].capture.local for i in members if photos[i].capture.local]
        summaries.append(TripSummary(
            names[members[0]], trip, min(locals_) if locals_ else None, max(locals_) if locals_ else None,
            tuple(scene_names[i] for i in dominant),
            tuple(object_labels[i] for i in np.argsort(-strongest)[:3] if strongest[i] >= 0.3),
            members[int(np.argmax(scenes[members, dominant[0]]))],  # the scene named first, by construction
        ))
    return summaries


def _why_nothing(message: str, skipped, notes=()) -> str:
    """The message with the first files' reasons (with one photo uploaded, the person learns what is wrong
    with it) and the album's notes (only system files uploaded: that they were left out)."""
    shown = "; ".join([f"{s.name}: {s.reason}" for s in skipped[:3]] + list(notes))
    more = f"; {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return f"{message} ({shown}{more})" if shown else message


def analyse_album(hub: ModelHub, album: AlbumInput, workers: int | None = None, progress=None,
                  params: events_module.EventParams = events_module.EventParams(),
                  w_f: float | None = None, engine=None) -> AlbumResult:
    """Every photo through the models (in parallel: `engine`, default threads of this process), then trips,
    days and moments, people and the profile."""
    if not album.items:
        raise AlbumError(_why_nothing("no photos to process", album.skipped, album.notes))
    catalog = hub.store.catalog
    scene_names = class_names(catalog[catalog.default("scene", "album")])
    object_labels = class_names(catalog[catalog.default("object_detection", "album")])
    threshold = match_threshold(catalog.default("face_embedding", "album"))
    done = _process_all(engine or ThreadEngine(hub, workers), album, progress)
    photos = _display_order([r for r in done if isinstance(r, PhotoResult)])
    skipped = list(album.skipped) + [r for r in done if isinstance(r, Skipped)]
    notes = list(album.notes)
    if not photos:
        raise AlbumError(_why_nothing("none of the files could be read as a photo", skipped))
    untimed = [p for p in photos if p.capture.local is None]
    if untimed:
        notes.append(f"{len(untimed)} photo(s) have no capture time (no EXIF date): they are shown without one, "
                     "after the dated photos, in name order, grouped by their content and names alone")
    scenes = np.stack([p.scene_probs for p in photos])
    objects = np.stack([p.object_confidence for p in photos])
    trips = events_module.segment([p.capture for p in photos], [p.name for p in photos], scenes, params)
    placement = tuple(zip(*events_module.labels_of(trips, len(photos))))
    people = group_people([p.face_vectors for p in photos], [p.face_crops for p in photos], threshold)
    model = interest_model()
    weights = profile_module.scene_weighted(model, w_f)
    signals = profile_module.signals_of(scenes, objects, np.stack([p.imagenet_probs for p in photos]),
                                        np.array([p.indoor for p in photos]), [p.face_boxes for p in photos],
                                        [p.person_boxes for p in photos])
    listed, scores, why = profile_module.photo_categories(model, signals, weights)
    per_trip = np.stack([listed[list(t.photos)].any(0) for t in trips])
    trip_scores = np.stack([scores[list(t.photos)].max(0) for t in trips])
    summaries = _summaries(photos, trips, scenes, objects, scene_names, object_labels)
    return AlbumResult(tuple(photos), tuple(skipped), tuple(notes), tuple(summaries),
                       placement, tuple(people), frequent_photos(people, FREQUENT_PERSON),
                       profile_module.build_profile(listed, scores, why),
                       profile_module.build_profile(per_trip, trip_scores, min_photos=1), weights,
                       busy_days(trips, listed, scores))
