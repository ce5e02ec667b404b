"""The album command line end to end: its files (--out JSON, --csv per photo, --profile-csv), people grouped
within the album and photos of someone seen twice marked private."""

import csv
import io
import json
import os

from PIL import Image

from pipelines.album.__main__ import main as album_cli
from tests.helpers import EVAL, exif_taken, jpeg_bytes

LFW = EVAL / "faces_lfw" / "images"



def test_the_album_cli_writes_its_files_and_keeps_people_private(tmp_path, store, sample_photos, monkeypatch, capsys):
    folder = tmp_path / "album"
    folder.mkdir()
    bill = sorted((LFW / "Bill_Gates").glob("*.jpg"))[:2]
    other = sorted(p for p in LFW.iterdir() if p.name != "Bill_Gates")[0]
    stranger = sorted(other.glob("*.jpg"))[0]
    for k, path in enumerate(bill):  # the same man twice, an hour apart
        (folder / f"bill-{k}.jpg").write_bytes(jpeg_bytes(Image.open(path).convert("RGB"), exif_taken(f"2024:05:0{k + 1} 10:00:00")))
    (folder / "stranger.jpg").write_bytes(jpeg_bytes(Image.open(stranger).convert("RGB"), exif_taken("2024:05:01 11:00:00")))
    sample_photos["coffee"].save(folder / "coffee.png")  # no capture time: none is invented
    (folder / "notes.jpg").write_text("not a photo")
    monkeypatch.setenv("MVL_MODEL_DIRS", os.pathsep.join(str(d) for d in store.model_dirs))
    monkeypatch.setenv("MVL_CACHE_DIR", str(store.cache_dir))
    out, per_photo, profile = tmp_path / "album.json", tmp_path / "photos.csv", tmp_path / "profile.csv"
    assert album_cli([str(folder), "--out", str(out), "--csv", str(per_photo), "--profile-csv", str(profile)]) == 0
    printed = capsys.readouterr().out
    assert "4 photos: 1 trips, 2 days" in printed and "skipped notes.jpg" in printed

    album = json.loads(out.read_text())
    assert album["photos"] == 4 and [s["file"] for s in album["skipped"]] == ["notes.jpg"]
    assert [sorted(p["photos"]) for p in album["people"] if len(p["photos"]) > 1] == [["bill-0.jpg", "bill-1.jpg"]]
    assert sorted(album["private_photos"]) == ["bill-0.jpg", "bill-1.jpg"]  # seen twice; the stranger once
    rows = {r["file"]: r for r in csv.DictReader(io.StringIO(per_photo.read_text()))}
    assert set(rows) == {"bill-0.jpg", "bill-1.jpg", "stranger.jpg", "coffee.png"}
    assert [rows[f]["private"] for f in ("bill-0.jpg", "bill-1.jpg", "stranger.jpg", "coffee.png")] == \
        ["True", "True", "False", "False"]
    assert rows["bill-0.jpg"]["capture_time"].startswith("2024-05-01T10:00") and rows["bill-0.jpg"]["time_source"] != "none"
    assert rows["coffee.png"]["capture_time"] == "" and rows["coffee.png"]["time_source"] == "none"
    assert rows["bill-0.jpg"]["people"] == rows["bill-1.jpg"]["people"] != rows["stranger.jpg"]["people"]
    assert rows["bill-0.jpg"]["trip"] == rows["stranger.jpg"]["trip"] != rows["coffee.png"]["trip"]
    assert rows["bill-0.jpg"]["day"] != rows["bill-1.jpg"]["day"]
    assert {r["file"]: str(r["private"]) for r in album["photo_records"]} == {f: r["private"] for f, r in rows.items()}
    table = list(csv.DictReader(io.StringIO(profile.read_text())))
    assert [(r["category"], int(r["photos"])) for r in table] == \
        [(c["category"], len(c["photos"])) for c in album["categories"]]
