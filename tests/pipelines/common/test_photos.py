"""Reading photos: every refusal is a PhotoError with a reason; every mode ends as the right upright RGB."""


import numpy as np
import pytest
from PIL import Image

import pipelines.common.photos as photos_module
from pipelines.common.photos import PhotoError, read_photo
from pipelines.vision.classification import Classifier
from tests.helpers import encoded, exif_taken, raw_png


@pytest.fixture(scope="module")
def coffee(sample_photos) -> Image.Image:
    return sample_photos["coffee"]


@pytest.fixture(scope="module")
def classifier(hub):
    return Classifier(hub.load("efficientnet_lite0.fp32_onnx", threads=1))


def top1(classifier, photo_bytes: bytes) -> str:
    return classifier(read_photo(photo_bytes).image).top[0].label


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"hello, this is a text file and not a photo\n" * 20, "not an image"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 100, "not an image"),
    ],
    ids=["zero bytes", "text", "jpeg magic then nothing"],
)
def test_unreadable_files_are_refused_with_a_reason(data, reason):
    with pytest.raises(PhotoError, match=reason):
        read_photo(data)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_files_are_refused(coffee, fmt):
    data = encoded(coffee, fmt)
    with pytest.raises(PhotoError, match="corrupt or truncated|not an image"):
        read_photo(data[: len(data) // 2])


def test_a_1x1_image_is_refused():
    with pytest.raises(PhotoError, match="1x1 pixels"):
        read_photo(encoded(Image.new("RGB", (1, 1)), "PNG"))


@pytest.mark.parametrize("side", [8000, 20000])
def test_huge_images_are_refused_before_decoding(side):
    # The header claims side x side; the data is 16x16, so decoding it would fail rather than refuse.
    data = raw_png(np.zeros((16, 16, 3), np.uint8), declared=(side, side))
    with pytest.raises(PhotoError, match="megapixels"):
        read_photo(data)


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(photos_module, "MAX_FILE_BYTES", 1000)
    path = tmp_path / "big.jpg"
    path.write_bytes(b"\xff" * 5000)
    with pytest.raises(PhotoError, match="limit"):
        read_photo(path)


def test_reading_from_a_path_equals_reading_bytes(tmp_path, coffee):
    path = tmp_path / "coffee.png"
    path.write_bytes(encoded(coffee, "PNG"))
    assert np.array_equal(np.asarray(read_photo(path).image), np.asarray(coffee))


def test_conversions_keep_the_rgb_original_label(classifier, coffee):
    original = top1(classifier, encoded(coffee, "PNG"))
    rgba = coffee.copy()
    rgba.putalpha(255)
    samples16 = np.asarray(coffee).astype(np.uint16) * 257
    variants = {
        "RGBA": encoded(rgba, "PNG"),
        "palette": encoded(coffee.quantize(256), "PNG"),
        "CMYK": encoded(coffee.convert("CMYK"), "JPEG", quality=98),
        "16-bit RGB PNG": raw_png(samples16),
    }
    assert original == "espresso"
    for name, data in variants.items():
        assert top1(classifier, data) == original, name


def test_16_bit_grayscale_is_scaled_not_clipped(classifier, coffee):
    grey = np.asarray(coffee.convert("L"))
    eight = read_photo(raw_png(grey)).image
    sixteen = read_photo(raw_png(grey.astype(np.uint16) * 257))
    assert sixteen.source_mode.startswith("I")
    assert np.array_equal(np.asarray(sixteen.image), np.asarray(eight))
    assert np.asarray(sixteen.image).max() > 200


def test_transparency_is_shown_on_white():
    clear = Image.new("RGBA", (32, 32), (255, 0, 0, 0))
    photo = read_photo(encoded(clear, "PNG"))
    assert photo.image.getpixel((5, 5)) == (255, 255, 255)
    assert photo.source_mode == "RGBA" and photo.notes == ("transparency shown on white",)


def test_an_exif_rotated_photo_is_read_upright_and_keeps_its_label(classifier, coffee):
    upright = coffee
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # as a phone held sideways stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    photo = read_photo(encoded(stored, "JPEG", quality=95, exif=exif))
    assert photo.size == upright.size
    assert any("EXIF orientation 6" in note for note in photo.notes)
    difference = np.abs(np.asarray(photo.image, np.int16) - np.asarray(upright, np.int16)).mean()
    assert difference < 4
    assert classifier(photo.image).top[0].label == classifier(upright).top[0].label == "espresso"


def test_an_animated_gif_uses_its_first_frame():
    frames = [Image.new("RGB", (32, 32), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    photo = read_photo(data)
    assert photo.image.getpixel((1, 1)) == (255, 0, 0)
    assert "first of 2 frames used" in photo.notes


def test_a_large_jpeg_is_decoded_at_reduced_size(coffee):
    big = coffee.resize((4000, 3000))
    photo = read_photo(encoded(big, "JPEG", quality=85), max_side=1600)
    assert max(photo.size) == 1600 and photo.size[1] == 1200
    assert any("draft mode, 2000x1500" in note for note in photo.notes)


def test_a_large_jpeg_is_decoded_to_the_shorter_side_asked(coffee):
    big = coffee.resize((4000, 3000))
    photo = read_photo(encoded(big, "JPEG", quality=85), max_shorter_side=600)
    assert photo.size == (800, 600)
    assert any("draft mode, 1000x750" in note for note in photo.notes)
    upright = read_photo(encoded(big.transpose(Image.Transpose.ROTATE_90), "PNG"), max_shorter_side=600)
    assert upright.size == (600, 800) and not any("draft" in note for note in upright.notes)


def test_a_heic_is_decoded_from_an_embedded_thumbnail_only_when_it_is_large_enough(coffee):
    import io

    import pillow_heif

    big = coffee.resize((1600, 1200))
    exif = exif_taken("2024:05:01 10:00:00", "+02:00")
    for thumbnails, used in (([800, 200], True), ([200], False)):
        buffer = io.BytesIO()
        image = pillow_heif.from_pillow(big)
        image.info["thumbnails"] = thumbnails
        image.save(buffer, quality=80, exif=exif.tobytes())
        photo = read_photo(buffer.getvalue(), max_shorter_side=300)
        assert photo.size == (400, 300)
        assert any("embedded 800x600 thumbnail" in note for note in photo.notes) == used
        assert photo.capture.taken is not None and photo.capture.taken.hour == 10  # the photo's own EXIF either way
        assert np.abs(np.asarray(photo.image, float) - np.asarray(coffee.resize((400, 300)), float)).mean() < 12
