"""An album's per-photo features as a Parquet table: processed once, profiled many times.

One row per photo (or per photo that could not be read, with the reason): its capture time and what that
rests on, scene / ImageNet scores and object confidences, face embeddings with their boxes and aligned
crops, a thumbnail, and how long each stage took. A folder of such files can be appended to as photos are
processed, so a run that stops resumes where it stopped. Needs pyarrow (requirements-ray.txt).
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
from PIL import Image

from pipelines.album.analysis import MAX_SHORTER_SIDE, PhotoResult
from pipelines.album.ingest import AlbumItem, Skipped
from pipelines.common.photos import Capture

FORMAT = "mobile-vision-lab album features 2"  # 2: the person boxes
CROP = 112
_THUMBNAIL_QUALITY = 90


def _pa():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise SystemExit("the features table needs pyarrow: pip install -r requirements-ray.txt") from None
    return pyarrow


def schema():
    pa = _pa()
    floats = pa.list_(pa.float32())
    return pa.schema([
        ("name", pa.string()), ("size", pa.int64()),  # with the name: which file a row is (a rerun's key)
        ("skipped", pa.string()),  # why it could not be read; null for a photo
        ("capture_local", pa.timestamp("us")), ("offset_minutes", pa.int32()), ("offset_from", pa.string()),
        ("latitude", pa.float64()), ("longitude", pa.float64()),
        ("width", pa.int32()), ("height", pa.int32()),  # as decoded (shorter side at most MAX_SHORTER_SIDE)
        ("top_scenes", pa.list_(pa.string())), ("indoor", pa.bool_()), ("objects", pa.list_(pa.string())),
        ("scene_probs", floats), ("imagenet_probs", floats), ("object_confidence", floats),
        ("face_vectors", pa.list_(floats)), ("face_dim", pa.int32()),  # the embedding's size, faces or not
        ("face_boxes", pa.list_(floats)),  # x1, y1, x2, y2 as fractions of width / height, and the score
        ("person_boxes", pa.list_(floats)),  # the same, of the object detector's people (analysis.PERSON_BOX_FLOOR)
        ("face_crops", pa.list_(pa.binary())),  # 112x112 RGB, raw: what the embedder saw
        ("thumbnail", pa.binary()),  # JPEG
        ("stage_names", pa.list_(pa.string())), ("stage_ms", pa.list_(pa.float64())),
    ])


def row_of(item: AlbumItem, result: PhotoResult | Skipped) -> dict:
    if isinstance(result, Skipped):
        return {"name": item.name, "size": _size(item), "skipped": result.reason}
    capture, thumbnail = result.capture, io.BytesIO()
    result.thumbnail.save(thumbnail, "JPEG", quality=_THUMBNAIL_QUALITY)
    return {
        "name": item.name, "size": _size(item), "skipped": None,
        "capture_local": capture.local,
        "offset_minutes": None if capture.offset is None else int(capture.offset.total_seconds() // 60),
        "offset_from": capture.offset_from, "latitude": capture.gps[0] if capture.gps else None,
        "longitude": capture.gps[1] if capture.gps else None, "width": result.size[0], "height": result.size[1],
        "top_scenes": list(result.top_scenes), "indoor": result.indoor, "objects": list(result.objects),
        "scene_probs": result.scene_probs.astype(np.float32), "imagenet_probs": result.imagenet_probs.astype(np.float32),
        "object_confidence": result.object_confidence.astype(np.float32),
        "face_vectors": [v.astype(np.float32) for v in result.face_vectors], "face_dim": result.face_vectors.shape[1],
        "face_boxes": [b.astype(np.float32) for b in result.face_boxes],
        "person_boxes": [b.astype(np.float32) for b in result.person_boxes],
        "face_crops": [np.ascontiguousarray(c, np.uint8).tobytes() for c in result.face_crops],
        "thumbnail": thumbnail.getvalue(),
        "stage_names": list(result.stage_ms), "stage_ms": [float(v) for v in result.stage_ms.values()],
    }


def _size(item: AlbumItem) -> int:
    try:
        return item.size
    except OSError:
        return -1


def table_of(rows: list[dict]):
    return _pa().Table.from_pylist(rows, schema=schema())


def _matrix(column, width: int | None = None) -> list[np.ndarray]:
    """A list<list<float>> column as one [n, D] array per row, without a Python float per value."""
    pa = _pa()
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    offsets = column.offsets.to_numpy()
    inner = column.flatten()
    values = inner.flatten().to_numpy(zero_copy_only=False)
    dim = width or (len(values) // len(inner) if len(inner) else 0)
    grid = values.reshape(-1, dim) if len(values) else np.zeros((0, dim), np.float32)
    return [grid[offsets[i]:offsets[i + 1]] for i in range(len(column))]


def _vectors(column) -> np.ndarray:
    pa = _pa()
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    values = column.flatten().to_numpy(zero_copy_only=False)
    return values.reshape(len(column), -1) if len(column) else values.reshape(0, 0)


def results_of(table) -> list[PhotoResult | Skipped]:
    """The rows of a features table as the album's own per-photo results (in the table's order)."""
    skipped = table.column("skipped").to_pylist()
    photos = table.filter(_pa().compute.is_null(table.column("skipped")))
    columns = {name: photos.column(name).to_pylist() for name in (
        "name", "capture_local", "offset_minutes", "offset_from", "latitude", "longitude", "width", "height",
        "top_scenes", "indoor", "objects", "face_crops", "thumbnail", "stage_names", "stage_ms")}
    scenes, imagenet, objects = (_vectors(photos.column(c)) for c in ("scene_probs", "imagenet_probs", "object_confidence"))
    dims = set(photos.column("face_dim").to_pylist())
    vectors = _matrix(photos.column("face_vectors"), dims.pop() if len(dims) == 1 else None)
    boxes, people = (_matrix(photos.column(c), 5) for c in ("face_boxes", "person_boxes"))
    made = []
    for i in range(photos.num_rows):
        c = {k: v[i] for k, v in columns.items()}
        gps = (c["latitude"], c["longitude"]) if c["latitude"] is not None else None
        offset = None if c["offset_minutes"] is None else timedelta(minutes=c["offset_minutes"])
        crops = np.stack([np.frombuffer(b, np.uint8).reshape(CROP, CROP, 3) for b in c["face_crops"]]) \
            if c["face_crops"] else np.zeros((0, CROP, CROP, 3), np.uint8)
        stages = dict(zip(c["stage_names"], c["stage_ms"]))
        made.append(PhotoResult(
            c["name"], Capture(c["capture_local"], offset, c["offset_from"] or "", gps), scenes[i], tuple(c["top_scenes"]),
            c["indoor"], imagenet[i], objects[i], tuple(c["objects"]),
            vectors[i], crops, Image.open(io.BytesIO(c["thumbnail"])).convert("RGB"),
            stages.get("decode", 0.0), sum(v for k, v in stages.items() if k != "decode"), stages,
            boxes[i].reshape(-1, 5), people[i].reshape(-1, 5), (c["width"], c["height"])))
    by_name = iter(made)
    names = table.column("name").to_pylist()
    return [Skipped(names[i], reason) if reason is not None else next(by_name) for i, reason in enumerate(skipped)]


@dataclass(frozen=True)
class FeatureTable:
    """A folder of Parquet files with one row per processed file, made by one set of models."""

    folder: Path
    made_by: dict  # the cards and decode size the features come from: a rerun with others starts afresh

    def __post_init__(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest = self.folder / "features.json"
        wanted = {"format": FORMAT, "made_by": self.made_by}
        if manifest.exists():
            found = json.loads(manifest.read_text(encoding="utf-8"))
            if found.get("format") != FORMAT:  # an older version's table lacks columns this one reads
                raise SystemExit(f"{self.folder} holds features in another format ({found.get('format')}, not "
                                 f"{FORMAT}): give another --features folder, or empty this one to start afresh")
            if found != wanted:
                raise SystemExit(f"{self.folder} holds features made by {found.get('made_by')}, not by "
                                 f"{self.made_by}: give another --features folder")
        else:
            manifest.write_text(json.dumps(wanted, indent=1), encoding="utf-8")

    def _files(self) -> list[Path]:
        return sorted(self.folder.glob("part-*.parquet"))

    def keys(self) -> set[tuple[str, int]]:
        pq = _pa().parquet
        found = set()
        for path in self._files():
            part = pq.read_table(path, columns=["name", "size"])
            found.update(zip(part.column("name").to_pylist(), part.column("size").to_pylist()))
        return found

    def append(self, table) -> None:
        """One more file, written whole or not at all (a stopped run leaves no half file behind)."""
        if not table.num_rows:
            return
        pq = _pa().parquet
        path = self.folder / f"part-{len(self._files()):06d}-{uuid.uuid4().hex[:8]}.parquet"
        partial = path.with_suffix(".partial")
        pq.write_table(table.cast(schema()), partial)
        partial.replace(path)

    def read(self, items: list[AlbumItem]) -> list[PhotoResult | Skipped]:
        """The results of these items, in their order, from the rows written for them."""
        pa = _pa()
        wanted = {(item.name, _size(item)) for item in items}
        parts = []
        for path in self._files():
            part = pa.parquet.read_table(path)
            keys = list(zip(part.column("name").to_pylist(), part.column("size").to_pylist()))
            keep = np.array([k in wanted for k in keys], bool)
            if keep.any():
                parts.append(part.filter(pa.array(keep)))
        table = pa.concat_tables(parts) if parts else table_of([])
        results = results_of(table)
        keys = list(zip(table.column("name").to_pylist(), table.column("size").to_pylist()))
        by_key = {}
        for key, result in zip(keys, results):
            by_key.setdefault(key, result)
        return [by_key[(item.name, _size(item))] for item in items]


def made_by(catalog) -> dict:
    return {"cards": {task: catalog.default(task, "album") for task in
                      ("scene", "classification", "object_detection", "face_detection", "face_embedding")},
            "max_shorter_side": MAX_SHORTER_SIDE}


class TabledEngine:
    """Any engine, with every result written to a features table as it comes and the photos already there
    not processed again."""

    def __init__(self, engine, table: FeatureTable, flush_every: int = 32):
        self.engine, self.table, self.flush_every = engine, table, flush_every
        self.processed: set[str] = set()  # names of the photos the last map processed (the rest: from the table)

    def map(self, items):
        items = list(items)
        known = self.table.keys()
        todo = [i for i, item in enumerate(items) if (item.name, _size(item)) not in known]
        self.processed = {items[i].name for i in todo}
        ready = dict(zip((i for i, item in enumerate(items) if (item.name, _size(item)) in known),
                         self.table.read([item for item in items if (item.name, _size(item)) in known])))
        position = 0

        def flush_ready():
            nonlocal position
            while position in ready:
                yield ready.pop(position)
                position += 1

        yield from flush_ready()
        pending = []
        todo_items = [items[i] for i in todo]
        if hasattr(self.engine, "map_tables"):  # the engine hands over rows it made where it ran
            for part in self.engine.map_tables(todo_items):
                self.table.append(part.drop_columns(["index"]))
                for j, result in zip(part.column("index").to_pylist(), results_of(part)):
                    ready[todo[j]] = result
                yield from flush_ready()
        else:
            for j, result in enumerate(self.engine.map(todo_items)):
                pending.append(row_of(todo_items[j], result))
                ready[todo[j]] = result
                if len(pending) >= self.flush_every:
                    self.table.append(table_of(pending))
                    pending = []
                yield from flush_ready()
            self.table.append(table_of(pending))
        yield from flush_ready()

    def close(self) -> None:
        if hasattr(self.engine, "close"):
            self.engine.close()
