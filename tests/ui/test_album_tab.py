"""The Album tab through its API: a profile with its evidence, every bad input named, sessions apart."""

import csv

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

import pipelines.album.ingest as album_module
from pipelines.album.interest import interest_model
from tests.helpers import EVAL, write_zip

COCO = sorted((EVAL / "coco" / "images").glob("*.jpg"))


def _analyse(client, files, window=60, threshold=0.003, w_f=0.5):
    return client.predict([handle_file(str(f)) for f in files], None, window, threshold, w_f, api_name="/analyse_album")



def test_an_album_gives_a_profile_whose_categories_open_their_photos(client, other_client):
    summary, events, _, _, _, profile, categories, exports, *_ = _analyse(client, COCO[:20])
    assert "**20 photos" in summary and "no capture time" in summary  # uploads carry no EXIF time here
    assert len(events["data"]) >= 1 and sum(row[3] for row in events["data"]) == 20
    assert all(row[2] >= 2 for row in profile["data"])  # a category needs two photos
    # how well each learned category is seen: on the held-out mix and on close-ups of one subject
    measured = profile["headers"].index("measured on held-out photos")
    learned = [row[measured] for row in profile["data"] if row[0] in interest_model().measured]
    assert learned and all(text.startswith("scenes and mixed photos: recall ") and
                           "; close-ups of one subject: " in text for text in learned)
    read = {row[0]: row[measured] for row in profile["data"] if row[0] not in interest_model().measured}
    assert read and all(text.startswith("not learned: ") for text in read.values())  # and says how it is read
    category, count = profile["data"][0][0], profile["data"][0][2]
    assert len(client.predict(category, api_name="/photos_behind_category")) == count
    assert {row[profile["headers"].index("busy days")] for row in profile["data"]} == {0}
    assert "Busy days: none, as no photo has a capture time" in summary
    assert other_client.predict(category, api_name="/photos_behind_category") == []  # not another's album
    assert sorted(p.rsplit("/", 1)[1] for p in exports) == ["album.json", "photos.csv", "profile.csv"]
    rows = list(csv.DictReader(open(next(p for p in exports if p.endswith("photos.csv")), encoding="utf-8")))
    assert len(rows) == 20 and {r["capture_time"] for r in rows} == {""} and {r["time_source"] for r in rows} == {"none"}
    assert all(r["trip"].startswith("u") for r in rows)  # undated groups, never given a time


def test_the_album_analysed_again_with_other_settings_is_not_processed_again(client, other_client):
    photos = COCO[-4:]
    first, _, _, _, _, profile, *_ = _analyse(client, photos)
    assert "previous analysis" not in first
    again, _, _, _, _, profile_again, *_ = _analyse(client, photos, window=30, threshold=0.002)
    assert "4 of them were processed in this session's previous analysis and not again" in again
    photos_of = profile["headers"].index("photos")
    assert [(r[0], r[photos_of]) for r in profile_again["data"]] == [(r[0], r[photos_of]) for r in profile["data"]]
    assert "previous analysis" not in _analyse(other_client, photos)[0]  # another session remembers nothing of it


def test_a_category_seen_in_one_photo_is_named_and_opens_it(client, tmp_path, sample_photos):
    files = []
    for name in ("chelsea", "coffee", "astronaut"):
        sample_photos[name].save(tmp_path / f"{name}.png")
        files.append(tmp_path / f"{name}.png")
    summary, *_ = _analyse(client, files)
    assert "Seen in fewer than 2 photos, so not in the profile: " in summary and "Food (coffee.png)" in summary
    (photo,) = client.predict("Food", api_name="/photos_behind_category")
    assert photo["caption"].startswith("coffee.png · ImageNet class: espresso")


def test_bad_archive_members_are_skipped_and_listed(client, tmp_path):
    photo = COCO[0].read_bytes()
    archive = write_zip(tmp_path / "holiday.zip", {
        "ok/one.jpg": photo, "../escape.jpg": photo, "/abs.jpg": COCO[1].read_bytes(), "nested.zip": b"PK\x03\x04",
        "notes.txt": b"text", "bomb.jpg": b"\0" * 3_000_000, "copy.jpg": photo,
    })
    summary = _analyse(client, [archive])[0]
    assert "**1 photos" in summary
    for expected in ("escape.jpg: a path outside the archive", "abs.jpg: a path outside the archive",
                     "nested.zip: an archive inside the archive", "notes.txt: not a photo", "bomb.jpg: compressed more than",
                     "copy.jpg: the same photo as"):
        assert expected in summary, expected


def test_an_archive_over_the_limits_is_refused(client, tmp_path, monkeypatch):
    monkeypatch.setattr(album_module, "MAX_ZIP_MEMBERS", 3)
    archive = write_zip(tmp_path / "many.zip", {f"p{i}.jpg": COCO[i].read_bytes() for i in range(5)})
    with pytest.raises(AppError, match="5 files; the limit is 3"):
        _analyse(client, [archive])


def test_more_photos_than_the_limit_processes_the_first(client, monkeypatch):
    monkeypatch.setattr(album_module, "MAX_PHOTOS", 3)
    summary = _analyse(client, COCO[:5])[0]
    assert "**3 photos" in summary and "only the first 3 (the album limit)" in summary


def test_unreadable_files_are_listed_and_nothing_readable_is_an_error(client, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff garbage")
    summary = _analyse(client, [COCO[0], broken])[0]
    assert "broken.jpg: the file is not an image" in summary
    with pytest.raises(AppError, match=r"none of the files could be read as a photo \(broken.jpg: the file is not an"):
        _analyse(client, [broken])
    notes = write_zip(tmp_path / "notes.zip", {"notes.txt": b"not a photo"})
    with pytest.raises(AppError, match=r"no photos to process \(notes.zip/notes.txt: not a photo\)"):
        _analyse(client, [notes])


def test_capture_times_order_the_album(client, tmp_path):
    paths = []
    for i, (name, hour) in enumerate((("late.jpg", 20), ("early.jpg", 7))):
        exif = Image.Exif()
        exif[0x8769] = {36867: f"2024:05:01 {hour:02d}:00:00"}
        with Image.open(COCO[i]) as image:
            image.convert("RGB").save(tmp_path / name, exif=exif)
        paths.append(tmp_path / name)
    result = _analyse(client, paths)
    trips = result[1]["data"]
    assert len(trips) == 1 and trips[0][1] == "2024-05-01 07:00–20:00"  # one outing, in capture order
    assert trips[0][2].endswith("2 photo(s), 2 moment(s)")  # 13 hours apart: two moments whatever the scenes
    rows = list(csv.DictReader(open(next(p for p in result[7] if p.endswith("photos.csv")), encoding="utf-8")))
    assert [(r["file"], r["capture_time"], r["time_source"]) for r in rows] == [
        ("early.jpg", "2024-05-01T07:00:00", "EXIF without offset"), ("late.jpg", "2024-05-01T20:00:00", "EXIF without offset")]
