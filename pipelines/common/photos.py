"""Reading a person's photo safely: limits checked before decoding, every mode turned into upright RGB."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from pipelines.common.heif import decode_reduced

MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_PIXELS = 50_000_000  # 50 megapixels: larger phone photos exist, but not as uploads to a demo
MIN_SIDE = 16
EXIF_ORIENTATION = 0x0112
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
DATETIME_ORIGINAL, DATETIME_DIGITIZED = 36867, 36868
OFFSET_ORIGINAL, OFFSET_DIGITIZED, OFFSET = 36881, 36882, 36880


@dataclass(frozen=True)
class Capture:
    """When and where the camera says the photo was taken (EXIF); None where the file does not say. A file's
    own time (a copy, an upload, a zip member) is never a capture time."""

    local: datetime | None = None  # the camera's wall clock (naive), EXIF DateTimeOriginal
    offset: timedelta | None = None  # from UTC: OffsetTimeOriginal, else worked out from the GPS time stamp
    offset_from: str = ""  # "EXIF" or "GPS time"
    gps: tuple[float, float] | None = None  # latitude, longitude in degrees

    @property
    def source(self) -> str:
        """'EXIF', 'EXIF without offset' or 'none': what the time shown for this photo rests on."""
        if self.local is None:
            return "none"
        return "EXIF" if self.offset is not None else "EXIF without offset"

    @property
    def taken(self) -> datetime | None:
        """The capture time, aware where the offset is known."""
        if self.local is None or self.offset is None:
            return self.local
        return self.local.replace(tzinfo=timezone(self.offset))


def _exif_datetime(raw) -> datetime | None:
    try:
        return datetime.strptime(str(raw).strip("\x00 "), "%Y:%m:%d %H:%M:%S") if raw else None
    except ValueError:
        return None


def _exif_offset(raw) -> timedelta | None:
    try:
        sign = -1 if str(raw).startswith("-") else 1
        hours, minutes = str(raw).strip("\x00 ").lstrip("+-").split(":")
        offset = sign * timedelta(hours=int(hours), minutes=int(minutes))
    except (ValueError, AttributeError):
        return None
    return offset if abs(offset) <= timedelta(hours=14) else None


def _degrees(value, ref) -> float | None:
    try:
        d, m, s = (float(v) for v in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    degrees = d + m / 60 + s / 3600
    return -degrees if str(ref).strip("\x00 ").upper() in ("S", "W") else degrees


def _gps(gps: dict) -> tuple[float, float] | None:
    lat, lon = _degrees(gps.get(2), gps.get(1)), _degrees(gps.get(4), gps.get(3))
    if lat is None or lon is None or (lat == 0 and lon == 0) or abs(lat) > 90 or abs(lon) > 180:
        return None
    return lat, lon


def _offset_from_gps(local: datetime, gps: dict) -> timedelta | None:
    """The GPS time stamp is UTC: its difference from the wall clock, to the quarter hour, is the offset."""
    stamp, day = gps.get(7), _exif_datetime(f"{gps.get(29)} 00:00:00") if gps.get(29) else None
    if not stamp or day is None:
        return None
    try:
        h, m, s = (float(v) for v in stamp)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    difference = local - (day + timedelta(hours=h, minutes=m, seconds=s))
    quarters = round(difference / timedelta(minutes=15))
    offset = quarters * timedelta(minutes=15)
    if abs(offset) > timedelta(hours=14) or abs(difference - offset) > timedelta(minutes=5):
        return None  # the two clocks do not agree to within minutes: no offset can be read from them
    return offset


def read_capture(exif: Image.Exif) -> Capture:
    """The capture time (DateTimeOriginal, else DateTimeDigitized; never DateTime, which editors and exports
    rewrite) with its offset, and the GPS position."""
    if not exif:
        return Capture()
    sub = exif.get_ifd(EXIF_IFD)
    gps = exif.get_ifd(GPS_IFD)
    local = _exif_datetime(sub.get(DATETIME_ORIGINAL)) or _exif_datetime(sub.get(DATETIME_DIGITIZED))
    position = _gps(gps)
    if local is None:
        return Capture(gps=position)
    offset = _exif_offset(sub.get(OFFSET_ORIGINAL) or sub.get(OFFSET_DIGITIZED) or sub.get(OFFSET))
    if offset is not None:
        return Capture(local, offset, "EXIF", position)
    offset = _offset_from_gps(local, gps)
    return Capture(local, offset, "GPS time" if offset is not None else "", position)


def capture_time(exif: Image.Exif) -> datetime | None:
    """EXIF capture time with its offset when the photo has one; naive local time otherwise."""
    return read_capture(exif).taken


class PhotoError(ValueError):
    """The file cannot be used as a photo; the message says why, in words a person understands."""


@dataclass(frozen=True)
class Photo:
    """An upright 8-bit RGB photo and what was done to get it."""

    image: Image.Image
    format: str
    source_mode: str
    notes: tuple[str, ...]
    capture: Capture = Capture()  # what EXIF says of when and where it was taken

    @property
    def taken(self) -> datetime | None:
        return self.capture.taken

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def _to_rgb(image: Image.Image) -> tuple[Image.Image, list[str]]:
    mode = image.mode
    if mode == "RGB":
        return image, []
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit samples: Pillow's convert() would clip them at 255 instead of scaling.
        samples = np.asarray(image, dtype=np.float64)
        scaled = np.clip(np.rint(samples / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(scaled, "L").convert("RGB"), ["16-bit grayscale scaled to 8 bits"]
    if mode == "F":
        samples = np.asarray(image, dtype=np.float64)
        peak = 1.0 if samples.max(initial=0.0) <= 1.0 else 255.0
        scaled = np.clip(np.rint(samples / peak * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(scaled, "L").convert("RGB"), ["floating-point grayscale scaled to 8 bits"]
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        # the mode is stated beside the notes (the Photo tab's "640x427 PNG, RGBA: ..."), not in them again
        return Image.alpha_composite(background, rgba).convert("RGB"), ["transparency shown on white"]
    return image.convert("RGB"), [f"converted from {mode} to RGB"]


@cache
def _heif_support() -> bool:
    """Phones' HEIC/HEIF photos, through pillow-heif's Pillow plugin (registered on first use, not at import)."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def read_photo(source: bytes | str | Path, max_side: int | None = None,
               max_shorter_side: int | None = None) -> Photo:
    """Decode a photo from bytes or a path. Raises PhotoError with a clear reason.

    max_side, max_shorter_side: a JPEG is decoded at a reduced scale (draft mode) when it is larger than needed,
    and any photo is then shrunk so its longer side is at most max_side and its shorter side at most
    max_shorter_side.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise PhotoError(f"cannot read the uploaded file: {exc.strerror or exc}") from exc
        if size > MAX_FILE_BYTES:
            raise PhotoError(f"the file is {size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB")
        data = path.read_bytes()
    else:
        data = bytes(source)
    if not data:
        raise PhotoError("the file is empty (0 bytes)")
    _heif_support()
    if len(data) > MAX_FILE_BYTES:
        raise PhotoError(f"the file is {len(data) / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB")
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise PhotoError(f"the image is larger than the limit of {MAX_PIXELS / 1e6:.0f} megapixels") from None
    except Exception:  # a malformed file makes Pillow's parsers raise almost anything (KeyError, TypeError...)
        raise PhotoError("the file is not an image this app can read (JPEG, PNG, WebP, HEIC, GIF, BMP, TIFF)") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise PhotoError(
            f"the image is {width}x{height} ({width * height / 1e6:.0f} megapixels); the limit is "
            f"{MAX_PIXELS / 1e6:.0f} megapixels. Downscale it first."
        )
    if min(width, height) < MIN_SIDE:
        raise PhotoError(f"the image is {width}x{height} pixels; both sides must be at least {MIN_SIDE} pixels")
    notes = []
    try:
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            image.seek(0)
            notes.append(f"first of {frames} frames used")
    except Exception as exc:  # a damaged frame table
        raise PhotoError(f"the image data is corrupt or truncated ({type(exc).__name__})") from None
    def shrink(size: tuple[int, int]) -> float:  # the scale the limits ask of a photo this size (1: none)
        return min(max_side / max(size) if max_side else 1.0, max_shorter_side / min(size) if max_shorter_side else 1.0)

    scale = shrink((width, height))
    # the request keeps the aspect, or draft cannot shrink
    wanted = (math.ceil(width * scale), math.ceil(height * scale))
    pixels = image  # what is decoded; the metadata is always read from image
    if image.format == "JPEG" and scale <= 0.5:
        # the decoder skips detail it would throw away
        image.draft("RGB", wanted)
        notes.append(f"decoded at reduced size (JPEG draft mode, {image.size[0]}x{image.size[1]})")
    elif image.format == "HEIF" and scale < 1.0:
        # HEVC cannot decode at a reduced size; pillow-heif's draft picks an embedded thumbnail at least this large
        # that is a scaled copy of the photo (same aspect, rotation and crop), if the camera wrote one
        if image.draft("RGB", wanted):
            notes.append(f"decoded from its embedded {image.size[0]}x{image.size[1]} thumbnail (HEIF)")
        elif image.mode == "RGB":  # libheif already applied irot and set EXIF's orientation to 1
            pixels = decode_reduced(data, (max(1, round(width * scale)), max(1, round(height * scale)))) or image
    try:
        pixels.load()
        exif = image.getexif()
        orientation = exif.get(EXIF_ORIENTATION, 1)
        capture = read_capture(exif)
        upright = ImageOps.exif_transpose(pixels) if pixels is image else pixels
    except Image.DecompressionBombError:
        raise PhotoError(f"the image is larger than the limit of {MAX_PIXELS / 1e6:.0f} megapixels") from None
    except Exception as exc:  # as above: the decoder's own error types vary with the damage
        raise PhotoError(f"the image data is corrupt or truncated ({type(exc).__name__})") from None
    if orientation in range(2, 9):
        notes.append(f"turned upright (EXIF orientation {orientation})")
    try:
        rgb, conversion = _to_rgb(upright)
    except Exception as exc:  # a mode Pillow opened but cannot convert
        raise PhotoError(f"the image data cannot be converted to RGB ({type(exc).__name__})") from None
    scale = shrink(rgb.size)
    if scale < 1.0:  # one resize from what the decoder gave
        rgb = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))),
                         Image.Resampling.BILINEAR)
    return Photo(image=rgb, format=image.format or "?", source_mode=image.mode, notes=tuple(notes + conversion),
                 capture=capture)


def png_bytes(pixels: np.ndarray) -> bytes:
    """RGB uint8 pixels as a lossless PNG (face crops stored or exported)."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def png_pixels(data: bytes) -> np.ndarray:
    """A PNG written by png_bytes, back as RGB uint8 pixels."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))
