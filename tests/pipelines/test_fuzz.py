"""Any bytes give a photo or a clear error; any zip gives photos, listed skips or a clear error."""

import io
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pipelines.album.ingest import AlbumError, gather
from pipelines.common.photos import Photo, PhotoError, read_photo
from tests.helpers import encoded


SEEDS = [encoded(Image.new("RGB", (40, 30), (200, 30, 90)), fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")]


@st.composite
def mutated_images(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 8))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    cut = draw(st.integers(1, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=64))


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=2048), mutated_images()))
def test_any_bytes_give_a_photo_or_a_photo_error(data):
    try:
        photo = read_photo(data)
    except PhotoError as exc:
        assert str(exc)
        return
    assert isinstance(photo, Photo) and photo.image.mode == "RGB" and min(photo.size) >= 16


@st.composite
def zips(draw):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))) as archive:
        for _ in range(draw(st.integers(0, 6))):
            name = draw(st.one_of(
                st.text(min_size=1, max_size=30).filter(lambda s: "\x00" not in s),
                st.sampled_from(["../x.jpg", "/abs.png", "a/b/c.jpg", "inner.zip", "C:\\\\evil.jpg", "ok.png"]),
            ))
            content = draw(st.one_of(st.binary(max_size=512), st.sampled_from(SEEDS)))
            archive.writestr(name, content)
    data = buffer.getvalue()
    if draw(st.booleans()):  # damage it
        position = draw(st.integers(0, len(data) - 1))
        data = data[:position] + bytes([draw(st.integers(0, 255))]) + data[position + 1:]
    return data


@settings(max_examples=200, deadline=3000, suppress_health_check=[HealthCheck.too_slow])
@given(zips())
def test_any_zip_gives_items_skips_or_an_album_error(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "album.zip"
        path.write_bytes(data)
        try:
            album = gather([("album.zip", path)])
        except AlbumError as exc:
            assert str(exc)
            return
        for item in album.items:
            inside = PurePosixPath(item.name.split("/", 1)[1].replace("\\", "/"))  # Windows separators too
            assert ".." not in inside.parts and not inside.is_absolute() and ":" not in inside.parts[0]
            assert len(item.read()) == item.size  # what was listed is readable, and only that much
        assert all(s.reason for s in album.skipped)
