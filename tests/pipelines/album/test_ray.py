"""The album on Ray Data (a local Ray, 2 CPUs) computes what the local pool computes, photo for photo and
event for event; its features table resumes a stopped run; a killed actor's batch is run again."""

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pipelines.album.analysis import ThreadEngine, analyse_album
from pipelines.album.features import FORMAT, FeatureTable, TabledEngine, made_by
from pipelines.album.ingest import folder_files, gather
from pipelines.album.ray_engine import RayEngine
from tests.helpers import EVAL

pytestmark = pytest.mark.heavy  # Ray starts, 200 photos twice

PHOTOS = 200


@pytest.fixture(scope="module")
def album_dir(tmp_path_factory) -> Path:
    """200 real photos: a phone album with capture times and GPS, COCO street and people photos, group
    photos and portraits (faces, people seen twice), plus a file that is not a photo."""
    folder = tmp_path_factory.mktemp("gallery")
    photos = {".jpg", ".jpeg"}
    sources = [p for p in sorted((EVAL / "albums_dev").rglob("*")) if p.suffix.lower() in photos] \
        + sorted((EVAL / "coco" / "images").glob("*.jpg")) + sorted((EVAL / "faces_groups" / "images").glob("*.jpg")) \
        + sorted((EVAL / "faces_lfw" / "images").rglob("*.jpg"))
    for i, path in enumerate(sources[:PHOTOS]):
        shutil.copy(path, folder / f"{i:03d}_{path.name}")
    assert len(list(folder.iterdir())) == PHOTOS
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a JPEG")
    return folder


@pytest.fixture(scope="module")
def album(album_dir):
    return gather(folder_files(album_dir), max_photos=10_000)


@pytest.fixture(scope="module")
def ray_engine(store):
    engine = RayEngine(store, actors=2, batch_size=8)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def pooled(hub, album):
    return analyse_album(hub, album, engine=ThreadEngine(hub, 2))


def _same_album(a, b):
    assert [p.name for p in a.photos] == [p.name for p in b.photos]
    for x, y in zip(a.photos, b.photos):
        assert x.capture == y.capture and x.top_scenes == y.top_scenes and x.objects == y.objects
        assert x.indoor == y.indoor and x.size == y.size
        for field in ("scene_probs", "imagenet_probs", "object_confidence", "face_vectors", "face_boxes",
                      "person_boxes"):
            np.testing.assert_allclose(getattr(x, field), getattr(y, field), atol=1e-5, err_msg=f"{x.name} {field}")
        np.testing.assert_array_equal(x.face_crops, y.face_crops)
    assert a.placement == b.placement and [t.trip for t in a.trips] == [t.trip for t in b.trips]
    assert [p.faces for p in a.people] == [p.faces for p in b.people] and a.private == b.private
    assert [(e.category, e.photos) for e in a.profile.entries] == [(e.category, e.photos) for e in b.profile.entries]
    assert [(s.name, s.reason) for s in a.skipped] == [(s.name, s.reason) for s in b.skipped]


def test_ray_computes_what_the_pool_computes_and_a_rerun_resumes(hub, album, pooled, ray_engine, tmp_path):
    table = FeatureTable(tmp_path / "features", made_by(hub.store.catalog))
    on_ray = TabledEngine(ray_engine, table)
    result = analyse_album(hub, album, engine=on_ray)
    assert len(on_ray.processed) == PHOTOS + 1  # every photo, and the broken file
    _same_album(pooled, result)
    # what this album is made of, so the comparison above compares something
    assert len(result.photos) == PHOTOS and [s.name for s in result.skipped] == ["broken.jpg"]
    assert sum(t.trip.dated for t in result.trips) >= 5 and len(result.people) >= 10 and result.private
    assert sum(len(p.face_vectors) for p in result.photos) >= 60 and len(result.profile.entries) >= 5

    again = TabledEngine(ray_engine, FeatureTable(tmp_path / "features", made_by(hub.store.catalog)))
    _same_album(pooled, analyse_album(hub, album, engine=again))
    assert again.processed == set()  # all read from the table

    parts = sorted((tmp_path / "features").glob("part-*.parquet"))
    assert len(parts) > 2
    parts[1].unlink()  # as if the run had stopped before this batch was written
    resumed = TabledEngine(ray_engine, FeatureTable(tmp_path / "features", made_by(hub.store.catalog)))
    _same_album(pooled, analyse_album(hub, album, engine=resumed))
    assert 0 < len(resumed.processed) <= 8


def test_features_made_by_other_models_are_not_mixed_in(hub, tmp_path):
    FeatureTable(tmp_path / "f", made_by(hub.store.catalog))
    other = made_by(hub.store.catalog) | {"max_shorter_side": 480}
    with pytest.raises(SystemExit, match="features made by"):
        FeatureTable(tmp_path / "f", other)
    # a table written by an earlier version (without the person boxes) is not read as if it had them
    manifest = tmp_path / "f" / "features.json"
    manifest.write_text(manifest.read_text().replace(FORMAT, "mobile-vision-lab album features 1"))
    with pytest.raises(SystemExit, match="another format .mobile-vision-lab album features 1"):
        FeatureTable(tmp_path / "f", made_by(hub.store.catalog))


def _actor_pids() -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if b"PhotoActor" in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_a_killed_actor_is_restarted_and_its_batch_run_again(hub, album, pooled, ray_engine, tmp_path):
    table = FeatureTable(tmp_path / "features", made_by(hub.store.catalog))
    results, errors = [], []

    def run():
        try:
            results.append(analyse_album(hub, album, engine=TabledEngine(ray_engine, table)))
        except Exception as exc:  # reported below
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 120
    while not list((tmp_path / "features").glob("part-*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.05)
    victims = _actor_pids()
    assert victims, "no photo actor found to stop"
    os.kill(victims[0], signal.SIGKILL)
    worker.join(300)
    assert not errors and results
    _same_album(pooled, results[0])
