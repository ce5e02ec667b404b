"""What many tests need, written once: where the shared photos and weights are, encoders, zips, a free port."""

from __future__ import annotations

import io
import os
import socket
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MVL_SHARED_DIR", ROOT.parent / "shared")).resolve()
MODEL_DIRS = [Path(d).resolve() for d in os.environ.get("MVL_MODEL_DIRS", str(SHARED / "models")).split(os.pathsep) if d]
EVAL = SHARED / "eval"
DATA_LATENCY = ROOT / "models" / "data" / "phone_latency.csv"


def encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    """The image as a file of `fmt` (PIL's save options pass through)."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def jpeg_bytes(image: Image.Image, exif: Image.Exif | None = None, quality: int = 90) -> bytes:
    return encoded(image, "JPEG", quality=quality, exif=exif if exif is not None else Image.Exif())


def png_bytes(image: Image.Image) -> bytes:
    return encoded(image, "PNG")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def raw_png(samples: np.ndarray, declared: tuple[int, int] | None = None) -> bytes:
    """A PNG written by hand: 8- or 16-bit, grey or RGB; `declared` lies about the size in the header."""
    height, width = samples.shape[:2]
    depth = 16 if samples.dtype == np.uint16 else 8
    colour = 2 if samples.ndim == 3 else 0
    w, h = declared or (width, height)
    header = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)
    rows = samples.astype(">u2" if depth == 16 else np.uint8).reshape(height, -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


def exif_taken(when: str | None = None, offset: str | None = None) -> Image.Exif:
    """EXIF with DateTimeOriginal ("2024:05:01 10:00:00") and OffsetTimeOriginal ("+02:00") where given."""
    exif = Image.Exif()
    if when:
        exif.get_ifd(0x8769)[36867] = when
    if offset:
        exif.get_ifd(0x8769)[36881] = offset
    return exif


def write_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
