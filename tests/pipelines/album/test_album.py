"""Albums: reading, capture times, events on albums with known borders, the profile and its evidence."""

import csv
import io
import json
import os
import zipfile
from datetime import datetime, timedelta, timezone
from functools import cache

import numpy as np
import pytest
from PIL import Image

import pipelines.album.ingest as album_module
from models.catalog import class_names
from pipelines.album.analysis import analyse_album
from pipelines.album.events import (
    REFERENCE_THRESHOLD,
    THRESHOLD,
    EventParams,
    border_score,
    borders,
    learn_threshold,
    scene_distance,
    split_events,
)
from pipelines.album.event_eval import main as events_cli
from pipelines.album.export import album_json
from pipelines.album.ingest import AlbumError, gather, read_zip
from pipelines.album.profile import CATEGORIES, build_profile
from pipelines.common.photos import read_photo
from pipelines.vision.classification import SceneRecognizer
from tests.helpers import EVAL, exif_taken, jpeg_bytes, png_bytes, write_zip

PLACES = EVAL / "places_miniplaces"


@cache
def places_by_class() -> dict[str, list[str]]:
    with (PLACES / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    by: dict[str, list[str]] = {}
    for r in rows:
        by.setdefault(r["label"], []).append(r["filename"])
    return by



@pytest.fixture(scope="module")
def synthetic_albums(hub):
    """12 albums of 6 MiniPlaces photos of one scene class each, as scene-score vectors."""
    scene = SceneRecognizer(hub.load("squeezenet1.1_places365.fp32_onnx", threads=2))
    classes = sorted(c for c, files in places_by_class().items() if len(files) >= 6)[:12]
    albums = []
    for c in classes:
        albums.append(np.stack([scene(Image.open(PLACES / "images" / f).convert("RGB")).probabilities
                                for f in places_by_class()[c][:6]]))
    return classes, albums


def _timed_stream(albums):
    """Albums one after another: photos 5 minutes apart, albums 20 minutes apart (inside the 1 h window)."""
    times, scenes, truth, clock = [], [], set(), datetime(2024, 6, 1, 9, 0)
    for a in albums:
        if scenes:
            truth.add(len(scenes))
            clock += timedelta(minutes=20)
        for vector in a:
            times.append(clock)
            scenes.append(vector)
            clock += timedelta(minutes=5)
    return times, np.stack(scenes), truth


def test_event_borders_on_albums_with_known_borders(synthetic_albums):
    _, albums = synthetic_albums
    times, scenes, truth = _timed_stream(albums)
    reference = border_score(borders(split_events(times, scenes, threshold=REFERENCE_THRESHOLD)), truth,
                             REFERENCE_THRESHOLD)
    learned = border_score(borders(split_events(times, scenes)), truth, THRESHOLD)
    print(f"reference {reference}; learned default {learned}")
    assert reference.recall == 1.0 and reference.precision == pytest.approx(0.234, abs=0.001)  # over-splits these
    assert (learned.precision, learned.recall) == pytest.approx((0.538, 0.636), abs=0.001)  # measured: F1 0.58


def test_time_alone_splits_albums_hours_apart(synthetic_albums):
    _, albums = synthetic_albums
    times, scenes, truth = _timed_stream(albums[:4])
    spread = [t + timedelta(hours=3 * sum(1 for b in truth if b <= i)) for i, t in enumerate(times)]
    predicted = borders(split_events(spread, scenes, threshold=1.0))  # any scene distance passes
    assert predicted == truth


def test_the_scene_threshold_cli_learns_from_a_folder_of_albums(synthetic_albums, tmp_path, store, monkeypatch,
                                                               capsys):
    classes, _ = synthetic_albums
    for c in classes:  # a folder of albums, one sub-folder each
        folder = tmp_path / "albums" / c.replace("/", "_")
        folder.mkdir(parents=True)
        for f in places_by_class()[c][:6]:
            (folder / f).write_bytes((PLACES / "images" / f).read_bytes())
    monkeypatch.setenv("MVL_MODEL_DIRS", os.pathsep.join(str(d) for d in store.model_dirs))
    monkeypatch.setenv("MVL_CACHE_DIR", str(store.cache_dir))
    assert events_cli(["scenes", str(tmp_path / "albums"), "--permutations", "5"]) == 0
    printed = capsys.readouterr().out
    learned = float(printed.split("learned threshold ")[1].split()[0])
    table = {float(row.split("|")[1]): [float(x.split()[0]) for x in row.split("|")[2:5]]
             for row in printed.splitlines() if row.startswith("| 0")}
    assert len(table) == 10 and learned == max(table, key=lambda t: table[t][2])  # the CLI names its best row
    assert learned == THRESHOLD and table[THRESHOLD] == [0.615, 0.564, 0.575]  # measured: the default's value
    assert table[REFERENCE_THRESHOLD] == [0.234, 1.0, 0.379]  # the reference's over-splits these albums
    assert f"| {THRESHOLD:g} | 0.615 | 0.564 | 0.575 (best) |" in printed and "(default)" not in printed


@pytest.mark.heavy
def test_the_default_scene_threshold_is_the_one_learned_from_the_real_labeled_albums(tmp_path, store, monkeypatch,
                                                                                    capsys):
    """The README's learned scene threshold, recomputed with its settings: albums_dev's 15 labeled days and 96
    MiniPlaces albums (the first 6 photos of every class that has 6), 50 permutations."""
    from tests.helpers import ROOT

    for c, files in places_by_class().items():
        if len(files) >= 6:
            folder = tmp_path / "miniplaces" / c.replace("/", "_")
            folder.mkdir(parents=True)
            for f in files[:6]:
                (folder / f).symlink_to(PLACES / "images" / f)
    monkeypatch.setenv("MVL_MODEL_DIRS", os.pathsep.join(str(d) for d in store.model_dirs))
    monkeypatch.setenv("MVL_CACHE_DIR", str(store.cache_dir))
    album = EVAL / "albums_dev" / "ehagood_EddiesTestSite"
    assert events_cli(["scenes", str(album), str(tmp_path / "miniplaces"), "--permutations", "50"]) == 0
    printed = capsys.readouterr().out
    assert f"learned threshold {THRESHOLD:g} from 111 albums, 50 permutations" in printed
    readme = (ROOT / "README.md").read_text()
    for threshold, f1 in ((REFERENCE_THRESHOLD, "0.371"), (0.004, "0.495"), (THRESHOLD, "0.501")):
        row = next(r for r in printed.splitlines() if r.startswith(f"| {threshold:g} |"))
        assert row.split("|")[4].split()[0] == f1, row
        assert f"{threshold:g} {f1}" in readme  # the README states what the recipe gives


def test_learn_threshold_scores_every_candidate(synthetic_albums):
    _, albums = synthetic_albums
    scores = learn_threshold(albums, [0.0001, 0.004, 1.0], permutations=3)
    by = {s.threshold: s for s in scores}
    assert by[0.0001].recall == pytest.approx(1.0) and by[1.0].recall == 0.0
    assert by[0.004].f1 > by[0.0001].f1


def test_scene_distance_is_the_reference_formula():
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.25, 0.5])
    assert scene_distance(p, q) == pytest.approx(((0.25 ** 2 / 0.75) * 2 + 0.25 / 0.5 * 1) / 3)
    assert scene_distance(p, p) == 0.0


def test_a_category_needs_two_photos():
    scores = np.zeros((3, 16))
    scores[0, CATEGORIES.index("Sports")] = 0.9
    scores[:2, CATEGORIES.index("Food")] = 0.5
    profile = build_profile(scores > 0, scores)
    assert [e.category for e in profile.entries] == ["Food"] and profile.entries[0].photos == (0, 1)
    assert [(e.category, e.photos) for e in profile.hidden] == [("Sports", (0,))]


def test_capture_time_reads_exif_with_its_offset():
    data = jpeg_bytes(Image.new("RGB", (32, 32)), exif_taken("2023:07:14 18:30:05", "+02:00"))
    when = read_photo(data).taken
    assert when == datetime(2023, 7, 14, 18, 30, 5, tzinfo=timezone(timedelta(hours=2)))
    assert read_photo(jpeg_bytes(Image.new("RGB", (32, 32)))).taken is None


def test_heic_photos_are_read(sample_photos):
    import pillow_heif  # pinned in requirements.txt: HEIC must never silently skip
    buffer = io.BytesIO()
    pillow_heif.from_pillow(sample_photos["coffee"]).save(buffer, quality=90)
    photo = read_photo(buffer.getvalue())
    assert photo.size == sample_photos["coffee"].size and photo.format in ("HEIF", "HEIC")



def test_zip_members_that_are_unsafe_or_not_photos_are_skipped_and_listed(sample_photos, tmp_path):
    photo = jpeg_bytes(sample_photos["coffee"])
    items, skipped = read_zip(write_zip(tmp_path / "album.zip", {
        "a/coffee.jpg": photo, "/etc/passwd.jpg": photo, "../up.jpg": photo, "inner.zip": b"PK",
        "readme.txt": b"hi", "bomb.jpg": b"\0" * 5_000_000, "win\\dir\\notes.txt": b"hi",
    }))
    assert [i.name for i in items] == ["album.zip/a/coffee.jpg"] and items[0].read() == photo
    reasons = {s.name.split("/", 1)[1]: s.reason for s in skipped}
    assert "outside the archive" in reasons["/etc/passwd.jpg"] and "outside the archive" in reasons["../up.jpg"]
    assert "inside the archive" in reasons["inner.zip"] and reasons["readme.txt"] == "not a photo"
    assert "zip bomb" in reasons["bomb.jpg"] and reasons["win\\dir\\notes.txt"] == "not a photo"


def test_what_macos_and_windows_write_beside_photos_is_left_out_in_one_note(sample_photos, tmp_path, monkeypatch):
    coffee, rocket = jpeg_bytes(sample_photos["coffee"]), jpeg_bytes(sample_photos["rocket"])
    apple_double = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        "  # a resource fork, named like the photo
    finder_zip = write_zip(tmp_path / "Trip.zip", {
        "Trip/IMG_0001.JPG": coffee, "__MACOSX/Trip/._IMG_0001.JPG": apple_double,
        "Trip/IMG_0002.JPG": rocket, "__MACOSX/Trip/._IMG_0002.JPG": apple_double, "Trip/.DS_Store": b"\0Bud1",
    })
    monkeypatch.setattr(album_module, "MAX_PHOTOS", 2)  # the resource forks do not take a photo's place
    album = gather([("Trip.zip", finder_zip), ("more/Thumbs.db", b"\xd0\xcf"),
                    ("more/._IMG_0003.JPG", apple_double)])
    assert [i.name for i in album.items] == ["Trip.zip/Trip/IMG_0001.JPG", "Trip.zip/Trip/IMG_0002.JPG"]
    assert album.skipped == () and album.notes == (
        "5 system file(s) left out (what macOS and Windows keep beside photos: __MACOSX, ._ files, .DS_Store, "
        "Thumbs.db)",)
    with pytest.raises(AlbumError, match=r"no photos to process \(1 system file\(s\) left out"):
        analyse_album(None, gather([("._IMG_0003.JPG", apple_double)]))


def test_a_phone_folders_videos_and_edit_files_are_listed_and_never_take_a_photos_place(sample_photos, monkeypatch):
    coffee, rocket = jpeg_bytes(sample_photos["coffee"]), jpeg_bytes(sample_photos["rocket"])
    monkeypatch.setattr(album_module, "MAX_PHOTOS", 2)
    album = gather([("IMG_0001.AAE", b"<?xml"), ("IMG_0001.JPG", coffee), ("IMG_0001.MOV", b"\0\0\0 ftypqt"),
                    ("IMG_0002.JPG.json", b"{}"), ("IMG_0002", rocket)])  # no suffix: read, to see
    assert [i.name for i in album.items] == ["IMG_0001.JPG", "IMG_0002"] and album.notes == ()
    assert [(s.name, s.reason) for s in album.skipped] == [
        ("IMG_0001.AAE", "not a photo"), ("IMG_0001.MOV", "not a photo"), ("IMG_0002.JPG.json", "not a photo")]


def test_zip_limits_are_checked_before_unpacking(monkeypatch, tmp_path):
    data = write_zip(tmp_path / "album.zip", {f"p{i}.jpg": b"x" * 100 for i in range(5)}, zipfile.ZIP_STORED)
    monkeypatch.setattr(album_module, "MAX_ZIP_MEMBERS", 4)
    with pytest.raises(AlbumError, match="5 files; the limit is 4"):
        read_zip(data)
    monkeypatch.setattr(album_module, "MAX_ZIP_MEMBERS", 100)
    monkeypatch.setattr(album_module, "MAX_ZIP_TOTAL", 300)
    with pytest.raises(AlbumError, match="would unpack"):
        read_zip(data)
    with pytest.raises(AlbumError, match="not a readable .zip"):
        (tmp_path / "bad.zip").write_bytes(b"not a zip at all")
        read_zip(tmp_path / "bad.zip")


def test_duplicates_once_and_the_album_limit(sample_photos, monkeypatch):
    coffee, rocket = jpeg_bytes(sample_photos["coffee"]), jpeg_bytes(sample_photos["rocket"])
    album = gather([("a.jpg", coffee), ("b.jpg", coffee), ("c.jpg", rocket)])
    assert [i.name for i in album.items] == ["a.jpg", "c.jpg"]
    assert "the same photo as a.jpg" in album.skipped[0].reason
    monkeypatch.setattr(album_module, "MAX_PHOTOS", 1)
    limited = gather([("a.jpg", coffee), ("c.jpg", rocket)])
    assert len(limited.items) == 1 and "only the first 1" in limited.notes[0]


def test_an_album_end_to_end_with_evidence_behind_every_category(hub, sample_photos):
    files = [(f"{name}.png", png_bytes(sample_photos[name])) for name in ("coffee", "chelsea", "astronaut", "rocket")]
    timed = Image.Exif()
    timed.get_ifd(0x8769)[36867] = "2023:07:14 08:00:00"
    files.append(("morning.jpg", jpeg_bytes(sample_photos["motorcycle_left"], timed)))
    result = analyse_album(hub, gather(files), workers=2)
    assert result.photos[0].name == "morning.jpg"  # timed photos first, then the rest by name
    assert [p.name for p in result.photos[1:]] == ["astronaut.png", "chelsea.png", "coffee.png", "rocket.png"]
    assert any("no capture time" in note for note in result.notes)
    exported = json.loads(album_json(result))
    names = {p.name for p in result.photos}
    for category in exported["categories"]:
        assert len(category["photos"]) >= 2 and set(category["photos"]) <= names
    # one photo per subject: none is an interest, and each is still said, with its photo and evidence
    rare = {c["category"]: (c["photos"], c["evidence"]) for c in exported["seen_in_too_few_photos"]}
    assert rare["Pets/animals"][0] == ["chelsea.png"] and rare["Food"][0] == ["coffee.png"]
    assert rare["Food"][1][0].startswith("ImageNet class: espresso")
    # the astronaut shows a person; the motorcycle has no rider: MTCNN's "face" on its wheel lies in no person box
    # (the detector's person 0.39 is in the shelves behind it), so it is not people
    assert rare["Demography"][0] == ["astronaut.png"] and rare["Demography"][1][0].startswith("object: person 0.")
    assert "Demography" not in {c["category"] for c in exported["categories"]}
    assert exported["photos"] == 5
    assert sum(len(m) for t in exported["trips"] for d in t["days"] for m in d["moments"]) == 5
    assert json.loads(json.dumps(exported)) == exported


def test_a_trip_is_shown_by_a_photo_of_its_own_scene_not_merely_its_first(hub):
    """A morning that starts with a kitchen photo and is then spent at a lighthouse: the trip's photo is a
    lighthouse, the one the scene model is surest of."""
    chosen = [("kitchen", places_by_class()["kitchen"][0])] + [("lighthouse", f)
                                                               for f in places_by_class()["lighthouse"][:4]]
    files = [(f"{i}_{kind}.jpg", jpeg_bytes(Image.open(PLACES / "images" / name).convert("RGB"),
                                            exif_taken(f"2024:05:01 09:{10 * i:02d}:00")))
             for i, (kind, name) in enumerate(chosen)]
    result = analyse_album(hub, gather(files), workers=2)
    [trip] = result.trips
    assert trip.trip.photos == (0, 1, 2, 3, 4) and trip.scenes[0] == "lighthouse"
    catalog = hub.store.catalog
    column = class_names(catalog[catalog.default("scene", "album")]).index("lighthouse")
    lighthouse = [p.scene_probs[column] for p in result.photos]
    assert trip.cover == int(np.argmax(lighthouse)) and result.photos[trip.cover].name.endswith("_lighthouse.jpg")
    assert json.loads(album_json(result))["trips"][0]["cover"] == result.photos[trip.cover].name


def test_only_busy_days_count_as_the_reference_counts_them(hub):
    """Four lighthouse photos one day, a living room on each of the next two: 2 photos a day on average, so only
    the lighthouse day is busy. The living rooms are still two indoor photos, but on no busy day."""
    lighthouses = places_by_class()["lighthouse"][:4]
    rooms = places_by_class()["living_room"][:2]
    taken = [f"2024:05:01 09:{10 * i:02d}:00" for i in range(4)] + ["2024:05:02 19:00:00", "2024:05:03 19:00:00"]
    files = [(f"{i}.jpg", jpeg_bytes(Image.open(PLACES / "images" / name).convert("RGB"), exif_taken(when)))
             for i, (name, when) in enumerate(zip(lighthouses + rooms, taken))]
    result = analyse_album(hub, gather(files), workers=2)
    busy = result.busy_days
    assert busy.dated_days == 3 and busy.average == 2.0
    assert [(d.date.isoformat(), d.photos) for d in busy.days] == [("2024-05-01", (0, 1, 2, 3))]
    photos = {e.category: e.photos for e in result.profile.entries}
    days = {e.category: e.photos for e in busy.profile.entries}
    assert photos["Indoors"] == (4, 5) and "Indoors" not in days
    assert photos["Outdoors"] == (0, 1, 2, 3) and days["Outdoors"] == (0,)
    exported = json.loads(album_json(result))
    per_category = {c["category"]: c["busy_days"] for c in exported["categories"]}
    assert per_category["Indoors"] == 0 and per_category["Outdoors"] == 1
    assert exported["busy_days"] == {"dated_days": 3, "average_photos_per_day": 2.0,
                                     "days": [{"date": "2024-05-01", "photos": ["0.jpg", "1.jpg", "2.jpg", "3.jpg"]}]}


def test_worker_processes_compute_what_threads_compute(hub, store, sample_photos):
    from pipelines.album.analysis import ProcessEngine, ThreadEngine

    items = gather([(f"{name}.png", png_bytes(sample_photos[name])) for name in ("astronaut", "coffee", "chelsea")]).items
    engine = ProcessEngine(store, workers=2)
    try:
        in_processes = list(engine.map(items))
    finally:
        engine.close()
    in_threads = list(ThreadEngine(hub, 2).map(items))
    assert [p.name for p in in_processes] == [p.name for p in in_threads] == ["astronaut.png", "coffee.png", "chelsea.png"]
    for a, b in zip(in_processes, in_threads):
        for field in ("scene_probs", "imagenet_probs", "object_confidence", "face_vectors"):
            np.testing.assert_allclose(getattr(a, field), getattr(b, field), atol=1e-5)
    assert len(in_threads[0].face_vectors) == 1  # the astronaut


def test_an_album_analysed_again_processes_only_the_photos_it_has_not_seen(hub, sample_photos):
    from pipelines.album.analysis import RememberingEngine, ThreadEngine

    class Counted:  # the real engine, counting what it is given
        def __init__(self):
            self.engine, self.given = ThreadEngine(hub, 2), []

        def map(self, items):
            self.given += [item.name for item in items]
            return self.engine.map(items)

    photos = {name: png_bytes(sample_photos[name]) for name in ("astronaut", "coffee", "chelsea", "rocket")}
    first = gather([(f"{name}.png", photos[name]) for name in ("astronaut", "coffee", "chelsea")])
    counted = Counted()
    engine = RememberingEngine(counted)
    before = analyse_album(hub, first, engine=engine)
    assert sorted(counted.given) == ["astronaut.png", "chelsea.png", "coffee.png"] and engine.reused == 0
    # the same photos, one renamed, with other settings: no photo is processed again, the results are the same
    again = gather([("astronaut.png", photos["astronaut"]), ("cat.png", photos["chelsea"]),
                    ("coffee.png", photos["coffee"])])
    counted.given, engine = [], RememberingEngine(counted, engine.remembered)
    after = analyse_album(hub, again, engine=engine, params=EventParams(scene_threshold=0.001))
    assert counted.given == [] and engine.reused == 3
    assert sorted(p.name for p in after.photos) == ["astronaut.png", "cat.png", "coffee.png"]
    by_name = {p.name: p for p in before.photos}
    for photo in after.photos:
        earlier = by_name["chelsea.png" if photo.name == "cat.png" else photo.name]
        np.testing.assert_array_equal(photo.scene_probs, earlier.scene_probs)
        np.testing.assert_array_equal(photo.face_vectors, earlier.face_vectors)
    # a photo added is the only one processed; one taken away is no longer remembered
    grown = gather([("coffee.png", photos["coffee"]), ("rocket.png", photos["rocket"])])
    counted.given, engine = [], RememberingEngine(counted, engine.remembered)
    analyse_album(hub, grown, engine=engine)
    assert counted.given == ["rocket.png"] and engine.reused == 1
    assert set(engine.remembered) == {item.sha256 for item in grown.items}
