"""HEIC files laid out as a phone writes them: the photo in 512x512 HEVC tiles under one `grid` item, one
shared HEVC configuration, an optional `irot` and an Exif item. pillow-heif only writes one-image files, so
each tile is encoded by it (x265) and the container is written here (ISO/IEC 23008-12)."""

from __future__ import annotations

import io
import math
import struct

from PIL import Image

from pipelines.common.heif import _Container


def _box(kind: str, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind.encode()) + payload


def _full(kind: str, payload: bytes, version: int = 0, flags: int = 0) -> bytes:
    return _box(kind, bytes([version]) + flags.to_bytes(3, "big") + payload)


def _tile(image: Image.Image, quality: int, preset: str) -> tuple[bytes, bytes]:
    """One tile as x265 codes it: its hvcC payload and its length-prefixed NAL units."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    buffer = io.BytesIO()
    image.save(buffer, "HEIF", quality=quality, enc_params={"preset": preset})
    container = _Container(buffer.getvalue())
    return container.property(container.primary, "hvcC"), container.data(container.primary)


def grid_heic(image: Image.Image, tile: int = 512, quality: int = 85, turns: int = 0, exif: bytes | None = None,
              preset: str = "ultrafast") -> bytes:
    """image (RGB) as a grid HEIC; turns: the `irot` quarter turns anticlockwise a viewer applies to it."""
    columns, rows = math.ceil(image.width / tile), math.ceil(image.height / tile)
    coded = [_tile(image.crop((c * tile, r * tile, (c + 1) * tile, (r + 1) * tile)), quality, preset)
             for r in range(rows) for c in range(columns)]
    configurations = {configuration for configuration, _ in coded}
    assert len(configurations) == 1, "x265 wrote tiles of one size with different parameter sets"
    tiles = list(range(2, 2 + len(coded)))
    exif_item = tiles[-1] + 1 if exif is not None else None
    payloads = [data for _, data in coded] + ([(6).to_bytes(4, "big") + exif] if exif is not None else [])
    grid = bytes([0, 0, rows - 1, columns - 1]) + struct.pack(">HH", image.width, image.height)

    def infe(item: int, kind: str) -> bytes:
        return _full("infe", struct.pack(">HH", item, 0) + kind.encode() + b"\0", version=2)

    items = [infe(1, "grid")] + [infe(item, "hvc1") for item in tiles]
    if exif_item:
        items.append(infe(exif_item, "Exif"))
    references = _box("dimg", struct.pack(">HH", 1, len(tiles)) + b"".join(struct.pack(">H", t) for t in tiles))
    if exif_item:
        references += _box("cdsc", struct.pack(">HHH", exif_item, 1, 1))
    properties = [_box("hvcC", configurations.pop()), _full("ispe", struct.pack(">II", tile, tile)),
                  _full("ispe", struct.pack(">II", image.width, image.height))]
    grid_properties = [(3, False)]
    if turns:
        properties.append(_box("irot", bytes([turns & 3])))
        grid_properties.append((4, True))
    associations = [(1, grid_properties)] + [(item, [(1, True), (2, False)]) for item in tiles]
    ipma = struct.pack(">I", len(associations)) + b"".join(
        struct.pack(">HB", item, len(listed)) + bytes((0x80 if essential else 0) | index for index, essential in listed)
        for item, listed in associations)
    iprp = _box("iprp", _box("ipco", b"".join(properties)) + _full("ipma", ipma))
    ftyp = _box("ftyp", b"heic" + bytes(4) + b"mif1heic")

    def meta(mdat_start: int) -> bytes:
        locations = [(1, 1, 0, len(grid))]  # the grid descriptor lives in idat
        offset = mdat_start
        for item, data in zip(tiles + ([exif_item] if exif_item else []), payloads):
            locations.append((item, 0, offset, len(data)))
            offset += len(data)
        iloc = bytes([0x44, 0x00]) + struct.pack(">H", len(locations)) + b"".join(
            struct.pack(">HHHHII", item, method, 0, 1, start, length) for item, method, start, length in locations)
        return _full("meta", _full("hdlr", bytes(4) + b"pict" + bytes(12) + b"\0") + _full("pitm", struct.pack(">H", 1))
                     + _full("iinf", struct.pack(">H", len(items)) + b"".join(items)) + _full("iref", references)
                     + iprp + _box("idat", grid) + _full("iloc", iloc, version=1))

    start = len(ftyp) + len(meta(0)) + 8
    return ftyp + meta(start) + _box("mdat", b"".join(payloads))
