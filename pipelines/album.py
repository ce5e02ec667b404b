"""A gallery: read (files or a .zip, with stated limits), put in capture order, every photo through scene,
objects and faces in parallel, split into events, people found, private photos marked, and the interest
profile built. Also a command line for folders too big to upload:

    python -m pipelines.album PHOTOS_FOLDER --out profile.json [--csv profile.csv] [--workers 2]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from models.hub import ModelHub
from models.store import ModelStore
from pipelines import events as events_module
from pipelines import profile as profile_module
from pipelines.classification import SceneRecognizer, class_names, load_model
from pipelines.face_detection import DetectorOptions, load_detector
from pipelines.face_recognition import Embedder, align_face, cluster
from pipelines.face_verification import read_thresholds
from pipelines.object_detection import ObjectDetector
from pipelines.photos import PhotoError, read_photo

MAX_PHOTOS = 200
MAX_ZIP_MEMBERS = 2000
MAX_ZIP_TOTAL = 1024 * 1024 * 1024  # uncompressed bytes
MAX_ZIP_RATIO = 100  # uncompressed / compressed, per member
MAX_SIDE = 1600  # photos are decoded to at most this; every model's input is smaller
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
ARCHIVE_SUFFIXES = {".zip", ".tar", ".gz", ".tgz", ".7z", ".rar", ".bz2", ".xz"}
SCENE_CARD = "squeezenet1.1_places365.fp32_onnx"
OBJECT_CARD = "nanodet_m.fp32_onnx"
DETECTOR = "MTCNN (ONNX Runtime)"
EMBEDDER = "mobilefacenet.fp32_onnx"
FREQUENT_PERSON = 2  # a person seen in at least this many photos is one who matters to the gallery's owner


class AlbumError(ValueError):
    """The album cannot be read as given; the message says why."""


@dataclass(frozen=True)
class AlbumItem:
    name: str  # as uploaded, for display only: never used as a path
    data: bytes = field(repr=False)
    file_time: datetime | None = None


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


@dataclass(frozen=True)
class AlbumInput:
    items: tuple[AlbumItem, ...]
    skipped: tuple[Skipped, ...]
    notes: tuple[str, ...]


def _is_unsafe(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":")


def read_zip(data: bytes, name: str = "album.zip") -> tuple[list[AlbumItem], list[Skipped]]:
    """Members of a zip, checked against its stated limits before anything is decompressed."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception:  # a damaged archive makes zipfile raise many types (BadZipFile, UnicodeDecodeError, ...)
        raise AlbumError(f"{name} is not a readable .zip file") from None
    members = [m for m in archive.infolist() if not m.filename.endswith("/")]
    if len(members) > MAX_ZIP_MEMBERS:
        raise AlbumError(f"{name} has {len(members)} files; the limit is {MAX_ZIP_MEMBERS}")
    total = sum(m.file_size for m in members)
    if total > MAX_ZIP_TOTAL:
        raise AlbumError(f"{name} would unpack to {total / 2**20:.0f} MB; the limit is {MAX_ZIP_TOTAL // 2**20} MB")
    items, skipped = [], []
    for member in members:
        label = f"{name}/{member.filename}"
        suffix = PurePosixPath(member.filename).suffix.lower() if member.filename else ""
        if not member.filename:
            skipped.append(Skipped(label, "a file without a name: not read"))
        elif _is_unsafe(member.filename):
            skipped.append(Skipped(label, "a path outside the archive (absolute or with '..'): not read"))
        elif suffix in ARCHIVE_SUFFIXES:
            skipped.append(Skipped(label, "an archive inside the archive: not opened"))
        elif suffix not in IMAGE_SUFFIXES:
            skipped.append(Skipped(label, "not a photo"))
        elif member.compress_size and member.file_size / member.compress_size > MAX_ZIP_RATIO:
            skipped.append(Skipped(label, f"compressed more than {MAX_ZIP_RATIO}:1 (a zip bomb?): not unpacked"))
        else:
            try:
                with archive.open(member) as fh:
                    content = fh.read(member.file_size + 1)
            except Exception as exc:  # damaged, encrypted or an unsupported compression: zipfile's errors vary
                skipped.append(Skipped(label, f"damaged or unreadable in the archive ({type(exc).__name__}): not read"))
                continue
            if len(content) > member.file_size:
                skipped.append(Skipped(label, "larger than its header says: not read"))
                continue
            when = datetime(*member.date_time) if member.date_time[0] >= 1980 else None
            items.append(AlbumItem(label, content, when))
    return items, skipped


def gather(files: list[tuple[str, bytes, datetime | None]], max_photos: int | None = None) -> AlbumInput:
    """Uploaded files and zips -> the photos to process (duplicates by content once, at most max_photos)."""
    max_photos = max_photos or MAX_PHOTOS
    items, skipped, notes = [], [], []
    for name, data, when in files:
        suffix = Path(name).suffix.lower()
        if suffix == ".zip":
            found, rejected = read_zip(data, Path(name).name)
            items += found
            skipped += rejected
        elif suffix in ARCHIVE_SUFFIXES:
            skipped.append(Skipped(name, "only .zip archives are opened"))
        else:
            items.append(AlbumItem(Path(name).name, data, when))
    seen: dict[str, str] = {}
    unique = []
    for item in items:
        digest = hashlib.sha256(item.data).hexdigest()
        if digest in seen:
            skipped.append(Skipped(item.name, f"the same photo as {seen[digest]}: processed once"))
        else:
            seen[digest] = item.name
            unique.append(item)
    if len(unique) > max_photos:
        notes.append(f"{len(unique)} photos: only the first {max_photos} (the album limit) are processed")
        unique = unique[:max_photos]
    return AlbumInput(tuple(unique), tuple(skipped), tuple(notes))


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
class AlbumPerson:
    number: int
    faces: tuple[tuple[int, int], ...]  # (photo, face)
    photos: tuple[int, ...]
    crop: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class AlbumResult:
    photos: tuple[PhotoResult, ...]  # capture order
    skipped: tuple[Skipped, ...]
    notes: tuple[str, ...]
    events: tuple[Event, ...]
    people: tuple[AlbumPerson, ...]
    private: tuple[int, ...]  # photos with a frequent person's face
    profile: profile_module.Profile
    event_profile: profile_module.Profile  # the same over events (fused scenes, max objects)


class AlbumModels:
    """The models an album is processed with; shared by the worker threads (backends are thread-safe)."""

    def __init__(self, hub: ModelHub, threads: int = 1):
        self.scene = SceneRecognizer(load_model(hub, SCENE_CARD, threads))
        self.objects = ObjectDetector(load_model(hub, OBJECT_CARD, threads))
        self.faces = load_detector(hub, DETECTOR, threads)
        self.embedder = Embedder(load_model(hub, EMBEDDER, threads))
        self.threshold = read_thresholds()[EMBEDDER].threshold
        self.scene_names = class_names(self.scene.card)

    def process(self, item: AlbumItem) -> PhotoResult | Skipped:
        import time

        start = time.perf_counter()
        try:
            photo = read_photo(item.data, max_side=MAX_SIDE)
        except PhotoError as exc:
            return Skipped(item.name, str(exc))
        decoded = time.perf_counter()
        scene = self.scene(photo.image)
        objects = self.objects(photo.image)
        faces = self.faces(photo.image, DetectorOptions()).faces
        crops = np.stack([align_face(photo.image, f) for f in faces]) if faces else np.zeros((0, 112, 112, 3), np.uint8)
        vectors = self.embedder(crops).vectors
        done = time.perf_counter()
        when, source = (photo.taken, "EXIF") if photo.taken else ((item.file_time, "file time") if item.file_time else (None, "none"))
        thumbnail = photo.image.copy()
        thumbnail.thumbnail((256, 256))
        return PhotoResult(
            item.name, when, source, scene.probabilities, tuple(p.label for p in scene.top[:3]),
            objects.class_confidence, tuple(dict.fromkeys(d.label for d in objects.detections)), vectors, crops,
            thumbnail, 1000 * (decoded - start), 1000 * (done - decoded),
        )


def analyse_album(hub: ModelHub, album: AlbumInput, workers: int | None = None, progress=None,
                  window: timedelta = events_module.WINDOW, threshold: float = events_module.THRESHOLD,
                  w_f: float = profile_module.W_F) -> AlbumResult:
    """Every photo through the models (in parallel), then events, people and the profile."""
    if not album.items:
        raise AlbumError("no photos to process" + (f" ({len(album.skipped)} files skipped)" if album.skipped else ""))
    models = AlbumModels(hub)
    workers = workers or os.cpu_count() or 1
    done = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, result in enumerate(pool.map(models.process, album.items)):
            done.append(result)
            if progress:
                progress(i + 1, len(album.items))
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
    people, private = _people(photos, models.threshold)
    scores = profile_module.category_scores(scenes, objects, w_f)
    event_scores = profile_module.category_scores(
        np.stack([events_module.fuse_scenes(scenes[list(e.photos)]) for e in event_list]),
        np.stack([objects[list(e.photos)].max(0) for e in event_list]), w_f)
    return AlbumResult(tuple(photos), tuple(skipped), tuple(notes), tuple(event_list), tuple(people), tuple(private),
                       profile_module.build_profile(scores), profile_module.build_profile(event_scores, min_photos=1))


def _people(photos: list[PhotoResult], threshold: float) -> tuple[list[AlbumPerson], list[int]]:
    index = [(p, f) for p, photo in enumerate(photos) for f in range(len(photo.face_vectors))]
    if not index:
        return [], []
    labels = cluster(np.concatenate([p.face_vectors for p in photos if len(p.face_vectors)]), threshold)
    people, private = [], set()
    for number in range(labels.max() + 1):
        members = tuple(index[i] for i in np.flatnonzero(labels == number))
        in_photos = tuple(sorted({p for p, _ in members}))
        people.append(AlbumPerson(number + 1, members, in_photos, photos[members[0][0]].face_crops[members[0][1]]))
        if len(in_photos) >= FREQUENT_PERSON:
            private.update(in_photos)
    return people, sorted(private)


def profile_json(result: AlbumResult) -> str:
    """The profile with the evidence behind every number: which photos support each category."""
    names = [p.name for p in result.photos]
    return json.dumps({
        "format": "mobile-vision-lab interest profile 1",
        "photos": len(result.photos),
        "groups": result.profile.groups(),
        "categories": [{"category": e.category, "group": e.group, "photos": [names[i] for i in e.photos],
                        "events": next((len(x.photos) for x in result.event_profile.entries if x.category == e.category), 0),
                        "mean_score": round(e.mean_score, 4)} for e in result.profile.entries],
        "events": [{"photos": [names[i] for i in e.photos], "start": e.start.isoformat() if e.start else None,
                    "end": e.end.isoformat() if e.end else None, "scenes": list(e.scenes), "objects": list(e.objects)}
                   for e in result.events],
        "people": [{"person": p.number, "photos": [names[i] for i in p.photos]} for p in result.people],
        "private_photos": [names[i] for i in result.private],
        "skipped": [{"file": s.name, "reason": s.reason} for s in result.skipped],
        "notes": list(result.notes),
    }, indent=1)


def profile_csv(result: AlbumResult) -> str:
    names = [p.name for p in result.photos]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["category", "group", "photos", "mean_score", "photo_names"])
    for e in result.profile.entries:
        writer.writerow([e.category, e.group, len(e.photos), round(e.mean_score, 4), ";".join(names[i] for i in e.photos)])
    return out.getvalue()


def folder_files(folder: Path) -> list[tuple[str, bytes, datetime | None]]:
    files = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            files.append((str(path.relative_to(folder)), path.read_bytes(), datetime.fromtimestamp(path.stat().st_mtime)))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", type=Path, help="a folder of photos (sub-folders included) or a .zip")
    parser.add_argument("--out", type=Path, required=True, help="the profile as JSON")
    parser.add_argument("--csv", type=Path, help="the profile table as CSV")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--max-photos", type=int, default=10_000)
    args = parser.parse_args(argv)
    if args.photos.is_dir():
        files = folder_files(args.photos)
    else:
        files = [(args.photos.name, args.photos.read_bytes(), None)]
    album = gather(files, args.max_photos)
    try:
        from tqdm import tqdm
        bar = tqdm(total=len(album.items), unit="photo", file=sys.stderr)
    except ImportError:  # the bar is a convenience
        bar = None

    def progress(done: int, total: int) -> None:
        if bar:
            bar.update(1)

    result = analyse_album(ModelHub(ModelStore.from_env()), album, args.workers, progress)
    if bar:
        bar.close()
    args.out.write_text(profile_json(result), encoding="utf-8")
    if args.csv:
        args.csv.write_text(profile_csv(result), encoding="utf-8")
    print(f"{len(result.photos)} photos, {len(result.events)} events, {len(result.people)} people; profile:")
    for e in result.profile.entries:
        print(f"  {e.category:18s} {len(e.photos):4d} photos  ({e.group})")
    for s in result.skipped:
        print(f"  skipped {s.name}: {s.reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
