"""Every photo of an album through scene, objects and faces (in parallel), then events, people, private
photos and the interest profile."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np
from PIL import Image

from models.catalog import class_names
from models.hub import ModelHub
from pipelines.album import events as events_module
from pipelines.album import profile as profile_module
from pipelines.album.ingest import AlbumError, AlbumInput, AlbumItem, Skipped
from pipelines.common.photos import PhotoError, read_photo
from pipelines.faces.people import Person, frequent_photos, group_people
from pipelines.faces.pipeline import FacePipeline
from pipelines.vision.classification import SceneRecognizer
from pipelines.vision.face_detection import DetectorOptions
from pipelines.vision.objects import ObjectDetector

MAX_SIDE = 1600  # photos are decoded to at most this; every model's input is smaller
FREQUENT_PERSON = 2  # a person seen in at least this many photos is one who matters to the gallery's owner


def _comparable(when: datetime | None) -> datetime | None:
    """Aware times in UTC; naive ones taken as they are (local), without an offset."""
    return when.astimezone(timezone.utc).replace(tzinfo=None) if when and when.tzinfo else when


@dataclass(frozen=True)
class PhotoResult:
    name: str
    time: datetime | None
    time_source: str  # "EXIF", "file time" or "none"
    scene_probs: np.ndarray = field(repr=False)
    top_scenes: tuple[str, ...]
    object_confidence: np.ndarray = field(repr=False)
    objects: tuple[str, ...]
    face_vectors: np.ndarray = field(repr=False)
    face_crops: np.ndarray = field(repr=False)
    thumbnail: Image.Image = field(repr=False)
    decode_ms: float = 0.0
    inference_ms: float = 0.0


@dataclass(frozen=True)
class Event:
    photos: tuple[int, ...]
    start: datetime | None
    end: datetime | None
    scenes: tuple[str, ...]  # dominant scenes of the fused scores
    objects: tuple[str, ...]


@dataclass(frozen=True)
class AlbumResult:
    photos: tuple[PhotoResult, ...]  # capture order
    skipped: tuple[Skipped, ...]
    notes: tuple[str, ...]
    events: tuple[Event, ...]
    people: tuple[Person, ...]
    private: tuple[int, ...]  # photos with a frequent person's face
    profile: profile_module.Profile
    event_profile: profile_module.Profile  # the same over events (fused scenes, max objects)


class AlbumModels:
    """The models an album is processed with (the catalog's album defaults); shared by the worker threads
    (backends are thread-safe)."""

    def __init__(self, hub: ModelHub, threads: int = 1):
        catalog = hub.store.catalog
        self.scene = SceneRecognizer(hub.load(catalog.default("scene", "album"), threads))
        self.objects = ObjectDetector(hub.load(catalog.default("object_detection", "album"), threads))
        self.faces = FacePipeline.load(hub, catalog.default("face_detection", "album"),
                                       catalog.default("face_embedding", "album"), threads)
        self.scene_names = class_names(self.scene.card)

    def process(self, item: AlbumItem) -> PhotoResult | Skipped:
        start = time.perf_counter()
        try:
            photo = read_photo(item.data, max_side=MAX_SIDE)
        except PhotoError as exc:
            return Skipped(item.name, str(exc))
        decoded = time.perf_counter()
        scene = self.scene(photo.image)
        objects = self.objects(photo.image)
        faces = self.faces(photo.image, DetectorOptions())
        done = time.perf_counter()
        when, source = (photo.taken, "EXIF") if photo.taken else ((item.file_time, "file time") if item.file_time else (None, "none"))
        thumbnail = photo.image.copy()
        thumbnail.thumbnail((256, 256))
        return PhotoResult(
            item.name, when, source, scene.probabilities, tuple(p.label for p in scene.top[:3]),
            objects.class_confidence, tuple(dict.fromkeys(d.label for d in objects.detections)),
            faces.embeddings.vectors, faces.crops, thumbnail, 1000 * (decoded - start), 1000 * (done - decoded),
        )


def _process_all(models: AlbumModels, album: AlbumInput, workers: int, progress) -> list[PhotoResult | Skipped]:
    done = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, result in enumerate(pool.map(models.process, album.items)):
            done.append(result)
            if progress:
                progress(i + 1, len(album.items))
    return done


def _events(photos: list[PhotoResult], scenes: np.ndarray, objects: np.ndarray, models: AlbumModels,
            window: timedelta, threshold: float) -> list[Event]:
    groups = events_module.split_events([_comparable(p.time) for p in photos], scenes, window, threshold)
    event_list = []
    for group in groups:
        fused = events_module.fuse_scenes(scenes[group])
        times = [photos[i].time for i in group if photos[i].time]
        top_objects = np.argsort(-objects[group].max(0))[:3]
        event_list.append(Event(
            tuple(group), min(times, key=_comparable) if times else None, max(times, key=_comparable) if times else None,
            tuple(models.scene_names[i] for i in np.argsort(-fused)[:3]),
            tuple(models.objects.labels[i] for i in top_objects if objects[group].max(0)[i] >= 0.3),
        ))
    return event_list


def analyse_album(hub: ModelHub, album: AlbumInput, workers: int | None = None, progress=None,
                  window: timedelta = events_module.WINDOW, threshold: float = events_module.THRESHOLD,
                  w_f: float = profile_module.W_F) -> AlbumResult:
    """Every photo through the models (in parallel), then events, people and the profile."""
    if not album.items:
        raise AlbumError("no photos to process" + (f" ({len(album.skipped)} files skipped)" if album.skipped else ""))
    models = AlbumModels(hub)
    done = _process_all(models, album, workers or os.cpu_count() or 1, progress)
    photos = [r for r in done if isinstance(r, PhotoResult)]
    skipped = list(album.skipped) + [r for r in done if isinstance(r, Skipped)]
    notes = list(album.notes)
    if not photos:
        raise AlbumError("none of the files could be read as a photo")
    untimed = [p for p in photos if p.time is None]
    if untimed:
        notes.append(f"{len(untimed)} photo(s) have no capture time: they are ordered by name and split into "
                     "events by their scenes alone")
    photos.sort(key=lambda p: (p.time is None, _comparable(p.time) or datetime.min, p.name))
    scenes = np.stack([p.scene_probs for p in photos])
    objects = np.stack([p.object_confidence for p in photos])
    event_list = _events(photos, scenes, objects, models, window, threshold)
    people = group_people([p.face_vectors for p in photos], [p.face_crops for p in photos], models.faces.threshold)
    scores = profile_module.category_scores(scenes, objects, w_f)
    event_scores = profile_module.category_scores(
        np.stack([events_module.fuse_scenes(scenes[list(e.photos)]) for e in event_list]),
        np.stack([objects[list(e.photos)].max(0) for e in event_list]), w_f)
    return AlbumResult(tuple(photos), tuple(skipped), tuple(notes), tuple(event_list), tuple(people),
                       frequent_photos(people, FREQUENT_PERSON), profile_module.build_profile(scores),
                       profile_module.build_profile(event_scores, min_photos=1))
