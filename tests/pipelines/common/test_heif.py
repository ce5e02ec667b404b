"""A phone's HEIC through FFmpeg: the same photo libheif gives, or None so that libheif decodes it."""

import io
from functools import cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import pipelines.common.photos as photos_module
from pipelines.common.heif import _BT601, _BT709, _to_rgb, decode_reduced
from pipelines.common.photos import read_photo
from tests.heic import grid_heic
from tests.helpers import exif_taken, png_bytes


@pytest.fixture(scope="module")
def scene(sample_photos) -> Image.Image:
    return sample_photos["coffee"].resize((1500, 1100), Image.Resampling.BICUBIC)


def read_by_libheif(monkeypatch, data: bytes, **limits):
    with monkeypatch.context() as patched:
        patched.setattr(photos_module, "decode_reduced", lambda *_: None)
        return read_photo(data, **limits)


def assert_same_photo(ours, theirs):
    assert ours.size == theirs.size
    difference = np.abs(np.asarray(ours.image, np.int16) - np.asarray(theirs.image, np.int16))
    # libheif upsamples chroma before shrinking, FFmpeg's planes are shrunk apart: a grey level or so
    assert difference.mean() < 1.0 and difference.max() <= 8, (difference.mean(), difference.max())


@pytest.mark.parametrize("turns", [0, 1, 3])
def test_a_grid_heic_as_a_phone_writes_it_reads_as_libheif_reads_it(scene, monkeypatch, turns):
    data = grid_heic(scene, turns=turns, exif=exif_taken("2024:05:01 10:00:00", "+02:00").tobytes())
    shown = (1100, 1500) if turns % 2 else (1500, 1100)
    assert Image.open(io.BytesIO(data)).size == shown  # libheif reads the file: the container is well formed
    assert decode_reduced(data, (300, 220)).size == (300, 220)  # the fast path takes it
    ours = read_photo(data, max_shorter_side=300)
    assert_same_photo(ours, read_by_libheif(monkeypatch, data, max_shorter_side=300))
    assert ours.capture.taken.hour == 10 and ours.capture.offset is not None
    # the photo itself, turned as irot says: the top-left tile's content lands where a viewer shows it
    expected = scene.rotate(90 * turns, expand=True).resize(ours.size, Image.Resampling.BILINEAR)
    assert np.abs(np.asarray(ours.image, float) - np.asarray(expected, float)).mean() < 3


@pytest.mark.parametrize("orientation", [1, 6, 3])
def test_a_one_image_heic_turned_by_irot_reads_as_libheif_reads_it(scene, monkeypatch, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation  # pillow-heif writes it as irot and resets the EXIF tag
    buffer = io.BytesIO()
    scene.save(buffer, "HEIF", quality=85, exif=exif.tobytes())
    data = buffer.getvalue()
    assert decode_reduced(data, (64, 64)) is not None
    assert_same_photo(read_photo(data, max_shorter_side=300),
                      read_by_libheif(monkeypatch, data, max_shorter_side=300))


@pytest.mark.parametrize("matrix, full_range", [(1, 0), (6, 0), (6, 1)])
def test_the_colour_matrix_and_range_an_nclx_box_signals_are_followed(scene, monkeypatch, matrix, full_range):
    buffer = io.BytesIO()
    scene.save(buffer, "HEIF", quality=85, matrix_coefficients=matrix, full_range_flag=full_range)
    data = buffer.getvalue()
    assert decode_reduced(data, (64, 64)) is not None
    assert_same_photo(read_photo(data, max_shorter_side=300),
                      read_by_libheif(monkeypatch, data, max_shorter_side=300))


def test_what_ffmpeg_does_not_take_goes_to_libheif(scene, sample_photos):
    def heic(image, **options):
        buffer = io.BytesIO()
        image.save(buffer, "HEIF", quality=85, **options)
        return buffer.getvalue()

    mirrored = Image.Exif()
    mirrored[0x0112] = 2
    cases = {"mirrored (imir)": heic(scene, exif=mirrored.tobytes()),
             "with alpha": heic(scene.convert("RGBA")),
             "BT.2020 colours": heic(scene, matrix_coefficients=9),
             "a PNG": png_bytes(scene),
             "cut short": grid_heic(scene)[:-5000]}
    for name, data in cases.items():
        assert decode_reduced(data, (300, 220)) is None, name
    photo = read_photo(cases["mirrored (imir)"], max_shorter_side=300)
    expected = scene.transpose(Image.Transpose.FLIP_LEFT_RIGHT).resize(photo.size, Image.Resampling.BILINEAR)
    assert np.abs(np.asarray(photo.image, float) - np.asarray(expected, float)).mean() < 3


def test_ycbcr_to_rgb_follows_the_signalled_matrix_and_range():
    rng = np.random.default_rng(0)
    planes = [rng.integers(0, 256, (32, 32), dtype=np.uint8) for _ in range(3)]
    pillow = np.asarray(Image.merge("YCbCr", [Image.fromarray(p) for p in planes]).convert("RGB"), np.int16)
    assert np.abs(_to_rgb(planes, _BT601, True).astype(np.int16) - pillow).max() <= 1  # JFIF: BT.601, full range
    # BT.709 limited range: black, white and the red primary as an encoder writes them
    limited = [np.array([[16, 235, 63]], np.uint8), np.array([[128, 128, 102]], np.uint8),
               np.array([[128, 128, 240]], np.uint8)]
    assert np.abs(_to_rgb(limited, _BT709, False).astype(int) - [[[0, 0, 0], [255, 255, 255], [255, 0, 0]]]).max() <= 2


@cache
def small_grid() -> bytes:
    return grid_heic(Image.linear_gradient("L").convert("RGB").resize((600, 300)), tile=256)


@st.composite
def mutated_grids(draw):
    data = bytearray(small_grid())
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    return bytes(data[:draw(st.integers(1, len(data)))])


@settings(max_examples=150, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_grids())
def test_any_damage_to_a_heic_gives_the_photo_or_none(data):
    image = decode_reduced(data, (120, 60))
    assert image is None or (image.mode == "RGB" and image.size in ((120, 60), (60, 120)))
