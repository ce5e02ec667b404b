"""What many tests need, written once: where the shared photos and weights are, encoders, zips, a free port, the
lightest Photo-tab request and an upload's inputs (the sandbox tests and benchmarks/sandbox.py send the same)."""

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
# the Photo tab's lightest view, /classify's inputs after the photo: MobileNet v1 0.25 int8, SqueezeNet scenes,
# 1 thread, 5 runs, NanoDet-m at score 0.3 and IoU 0.45
LIGHT_CLASSIFY_ARGS = ("mobilenet_v1_0.25_128.uint8_qat_tflite", "squeezenet1.1_places365.fp32_onnx", 1, 5,
                       "nanodet_m.fp32_onnx", 0.3, 0.45)


def upload_args(model: Path, photo: Path, side: int) -> tuple:
    """/run_uploaded_model's inputs for a model of [1, 3, side, side] RGB scaled to -1..1, without labels."""
    from gradio_client import handle_file

    return (handle_file(str(model)), None, handle_file(str(photo)), side, side, "RGB",
            "(x - 127.5) / 127.5  (-1..1)", "whole photo stretched", "auto", 1)


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
