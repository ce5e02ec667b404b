"""A phone's HEIC photo decoded by FFmpeg's HEVC decoder and reduced on its YCbCr planes.

HEVC cannot decode at a reduced size, so a 12 MP HEIC costs a full decode however small the photo is needed:
through pillow-heif, libheif's libde265 and its RGB conversion take about 370 ms on this CPU and Pillow's copies of
the 12 MP result 60 ms more; FFmpeg's decoder (PyAV) takes about 280 ms, and the planes are shrunk before they
become RGB (0.60-0.68x the CPU time in all, `benchmarks/speed.py`). Only the layout phones write is
handled here: a primary image that is one HEVC image or a grid of HEVC tiles, 8-bit 4:2:0, at most rotated by
`irot`. Anything else (mirroring, cropping, alpha, 10 bits, AVIF, ...) returns None and libheif decodes it.
"""

from __future__ import annotations

import struct

import numpy as np
from PIL import Image

_BT601 = (0.299, 0.114)  # Kr, Kb
_BT709 = (0.2126, 0.0722)
# HEVC/ISO 23091-2 matrix_coefficients -> (Kr, Kb); 2 is "unspecified", which libheif reads as BT.601
_MATRICES = {1: _BT709, 2: _BT601, 5: _BT601, 6: _BT601}
_ALPHA = {b"urn:mpeg:hevc:2015:auxid:1", b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha"}


class _Unsupported(Exception):
    """The file is not the layout this module decodes (or not well formed); libheif takes it."""


def _boxes(buf: bytes, start: int, end: int):
    """(type, payload start, payload end) of the ISO BMFF boxes in buf[start:end]."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", buf, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise _Unsupported("a box runs past its parent")
        yield kind.decode("latin-1"), pos + header, pos + size
        pos += size


def _uint(buf: bytes, pos: int, width: int) -> tuple[int, int]:
    if pos + width > len(buf):
        raise _Unsupported("truncated")
    return int.from_bytes(buf[pos:pos + width], "big"), pos + width


class _Container:
    """The items of a HEIF file's `meta` box: types, data, references and properties."""

    def __init__(self, buf: bytes):
        self.buf = buf
        top = {kind: (s, e) for kind, s, e in _boxes(buf, 0, len(buf))}
        if "meta" not in top:
            raise _Unsupported("no meta box")
        start, end = top["meta"]
        meta = {kind: (s, e) for kind, s, e in _boxes(buf, start + 4, end)}
        for needed in ("pitm", "iinf", "iloc", "iprp"):
            if needed not in meta:
                raise _Unsupported(f"no {needed} box")
        s, _ = meta["pitm"]
        self.primary, _ = _uint(buf, s + 4, 2 if buf[s] == 0 else 4)
        self.types = self._item_types(*meta["iinf"])
        self.locations = self._locations(*meta["iloc"])
        self.idat = meta.get("idat")
        self.references = self._references(*meta["iref"]) if "iref" in meta else {}
        self.properties = self._properties(*meta["iprp"])

    def _item_types(self, start: int, end: int) -> dict[int, str]:
        buf = self.buf
        types = {}
        for kind, s, _ in _boxes(buf, start + 4 + (2 if buf[start] == 0 else 4), end):
            if kind != "infe" or buf[s] < 2:
                continue
            item, pos = _uint(buf, s + 4, 2 if buf[s] == 2 else 4)
            types[item] = buf[pos + 2:pos + 6].decode("latin-1")
        return types

    def _locations(self, start: int, end: int) -> dict[int, tuple[int, list[tuple[int, int]]]]:
        buf = self.buf
        version = buf[start]
        pos = start + 4
        offset_size, length_size = buf[pos] >> 4, buf[pos] & 15
        base_size, index_size = buf[pos + 1] >> 4, (buf[pos + 1] & 15 if version in (1, 2) else 0)
        count, pos = _uint(buf, pos + 2, 2 if version < 2 else 4)
        locations = {}
        for _ in range(count):
            item, pos = _uint(buf, pos, 2 if version < 2 else 4)
            method = 0
            if version in (1, 2):
                method, pos = _uint(buf, pos, 2)
                method &= 15
            base, pos = _uint(buf, pos + 2, base_size)  # after data_reference_index
            extents, pos = _uint(buf, pos, 2)
            spans = []
            for _ in range(extents):
                offset, pos = _uint(buf, pos + index_size, offset_size)
                length, pos = _uint(buf, pos, length_size)
                spans.append((base + offset, length))
            locations[item] = (method, spans)
        return locations

    def _references(self, start: int, end: int) -> dict[tuple[str, int], list[int]]:
        buf = self.buf
        width = 2 if buf[start] == 0 else 4
        references: dict[tuple[str, int], list[int]] = {}
        for kind, s, _ in _boxes(buf, start + 4, end):
            source, pos = _uint(buf, s, width)
            count, pos = _uint(buf, pos, 2)
            references.setdefault((kind, source), []).extend(
                _uint(buf, pos + i * width, width)[0] for i in range(count))
        return references

    def _properties(self, start: int, end: int) -> dict[int, list[tuple[str, int, int]]]:
        buf = self.buf
        parts = {kind: (s, e) for kind, s, e in _boxes(buf, start, end)}
        if "ipco" not in parts or "ipma" not in parts:
            raise _Unsupported("no item properties")
        container = list(_boxes(buf, *parts["ipco"]))
        s, _ = parts["ipma"]
        version, wide = buf[s], buf[s + 3] & 1
        count, pos = _uint(buf, s + 4, 4)
        properties = {}
        for _ in range(count):
            item, pos = _uint(buf, pos, 2 if version < 1 else 4)
            associations, pos = _uint(buf, pos, 1)
            listed = []
            for _ in range(associations):
                value, pos = _uint(buf, pos, 2 if wide else 1)
                index = value & (0x7FFF if wide else 0x7F)
                if index:
                    if index > len(container):
                        raise _Unsupported("a property index past the container")
                    listed.append(container[index - 1])
            properties[item] = listed
        return properties

    def data(self, item: int) -> bytes:
        if item not in self.locations:
            raise _Unsupported("an item without a location")
        method, spans = self.locations[item]
        if method == 0:
            origin = 0
        elif method == 1 and self.idat:
            origin = self.idat[0]
        else:
            raise _Unsupported("an item built from other items")
        chunks = [self.buf[origin + offset:origin + offset + length] for offset, length in spans]
        if any(len(chunk) != length for chunk, (_, length) in zip(chunks, spans)):
            raise _Unsupported("an item past the end of the file")
        return b"".join(chunks)

    def property(self, item: int, kind: str) -> bytes | None:
        for name, s, e in self.properties.get(item, []):
            if name == kind:
                return self.buf[s:e]
        return None


def _is_alpha(auxiliary_type: bytes | None) -> bool:
    return auxiliary_type is not None and auxiliary_type[4:].split(b"\0")[0] in _ALPHA


def _size(container: _Container, item: int) -> tuple[int, int]:
    spatial = container.property(item, "ispe")
    if spatial is None or len(spatial) < 12:
        raise _Unsupported("no image size")
    return struct.unpack_from(">II", spatial, 4)


def _layout(container: _Container) -> tuple[list[int], int, int, tuple[int, int], tuple[int, int]]:
    """The primary image's HEVC tiles (row by row), grid columns and rows, the tiles' size and the image's."""
    primary = container.primary
    kind = container.types.get(primary)
    if kind == "hvc1":
        size = _size(container, primary)
        if size[0] % 2 or size[1] % 2:  # its chroma planes are rounded up, which _ycbcr_planes does not do
            raise _Unsupported("an odd side")
        return [primary], 1, 1, size, size
    if kind != "grid":
        raise _Unsupported(f"primary item of type {kind}")
    grid = container.data(primary)
    if len(grid) < 8 or grid[0] != 0:
        raise _Unsupported("grid descriptor")
    rows, columns = grid[2] + 1, grid[3] + 1
    width, pos = _uint(grid, 4, 4 if grid[1] & 1 else 2)
    height, _ = _uint(grid, pos, 4 if grid[1] & 1 else 2)
    tiles = container.references.get(("dimg", primary), [])
    if len(tiles) != rows * columns or any(container.types.get(tile) != "hvc1" for tile in tiles):
        raise _Unsupported("grid tiles")
    tile = _size(container, tiles[0])
    # every tile one size, and no tile wholly outside the picture (what is decoded is what is shown)
    if any(_size(container, other) != tile for other in tiles) or tile[0] % 2 or tile[1] % 2 or \
            not (columns - 1) * tile[0] < width <= columns * tile[0] or \
            not (rows - 1) * tile[1] < height <= rows * tile[1]:
        raise _Unsupported("grid tiles")
    return tiles, columns, rows, tile, (width, height)


def _ycbcr_planes(frames: list, columns: int, rows: int, tile: tuple[int, int],
                  size: tuple[int, int]) -> list[np.ndarray]:
    """Luma and both chroma planes of the whole picture, tiles placed side by side and cropped to its size."""
    (tile_width, tile_height), (width, height) = tile, size
    planes = []
    for index, (plane_width, plane_height) in enumerate(((tile_width, tile_height),
                                                         (tile_width // 2, tile_height // 2),
                                                         (tile_width // 2, tile_height // 2))):
        whole = np.empty((rows * plane_height, columns * plane_width), np.uint8)
        for number, frame in enumerate(frames):
            plane = frame.planes[index]
            pixels = np.frombuffer(plane, np.uint8).reshape(plane_height, plane.line_size)[:, :plane_width]
            row, column = divmod(number, columns)
            whole[row * plane_height:(row + 1) * plane_height, column * plane_width:(column + 1) * plane_width] = pixels
        divisor = 1 if index == 0 else 2
        planes.append(whole[:(height + divisor - 1) // divisor, :(width + divisor - 1) // divisor])
    return planes


def _to_rgb(planes: list[np.ndarray], matrix: tuple[float, float], full_range: bool) -> np.ndarray:
    """ISO 23091-2 YCbCr to RGB (8 bits), the planes already at one size."""
    kr, kb = matrix
    kg = 1.0 - kr - kb
    y, cb, cr = (plane.astype(np.float32) for plane in planes)
    if full_range:
        cb -= 128.0
        cr -= 128.0
    else:
        y = (y - 16.0) * (255.0 / 219.0)
        cb = (cb - 128.0) * (255.0 / 224.0)
        cr = (cr - 128.0) * (255.0 / 224.0)
    red = y + (2.0 - 2.0 * kr) * cr
    blue = y + (2.0 - 2.0 * kb) * cb
    green = y - (kb * (2.0 - 2.0 * kb) * cb + kr * (2.0 - 2.0 * kr) * cr) / kg
    return np.clip(np.rint(np.stack([red, green, blue], axis=-1)), 0, 255).astype(np.uint8)


def _phone_layout(container: _Container, tiles: list[int]) -> tuple[bytes, int]:
    """The tiles' one HEVC configuration and the quarter turns (anticlockwise) of `irot`; _Unsupported when the
    primary image is mirrored, cropped, has an alpha plane, or is not 8-bit 4:2:0."""
    primary = container.primary
    if {name for name, _, _ in container.properties.get(primary, [])} & {"imir", "clap"}:
        raise _Unsupported("mirrored or cropped")
    if any(_is_alpha(container.property(source, "auxC")) for (kind, source), targets
           in container.references.items() if kind == "auxl" and primary in targets):
        raise _Unsupported("with an alpha plane")  # depth maps and gain maps beside it do not matter
    configuration = container.property(tiles[0], "hvcC")
    if configuration is None or any(container.property(item, "hvcC") != configuration for item in tiles):
        raise _Unsupported("tiles without one HEVC configuration")
    if len(configuration) < 23 or configuration[16] & 3 != 1 or configuration[17] & 7 or configuration[18] & 7:
        raise _Unsupported("not 8-bit 4:2:0")
    rotation = container.property(primary, "irot")
    return bytes(configuration), rotation[0] & 3 if rotation else 0


def _colour(container: _Container, frame) -> tuple[tuple[float, float], bool]:
    """The YCbCr matrix and whether the range is full: an nclx colour box says (an ICC profile beside it says what
    the RGB means), else the HEVC stream's own signalling."""
    nclx = [box for box in (container.buf[s:e] for name, s, e in container.properties.get(container.primary, [])
                            if name == "colr") if box[:4] == b"nclx" and len(box) >= 11]
    if nclx:
        code, full_range = int.from_bytes(nclx[0][8:10], "big"), bool(nclx[0][10] & 0x80)
    else:
        code, full_range = int(frame.colorspace), frame.color_range == 2  # 2: full ("JPEG") range
    if code not in _MATRICES:
        raise _Unsupported(f"colour matrix {code}")
    return _MATRICES[code], full_range


def decode_reduced(data: bytes, shown: tuple[int, int]) -> Image.Image | None:
    """The primary image of a phone's HEIC, rotated as its `irot` says and shrunk to `shown` (width, height), as
    libheif would decode it and Pillow shrink it (bilinear); None when the file is not that layout or PyAV is not
    installed.
    """
    try:
        import av
    except ImportError:
        return None
    try:
        container = _Container(data)
        tiles, columns, rows, tile, size = _layout(container)
        configuration, turns = _phone_layout(container, tiles)
        decoder = av.CodecContext.create("hevc", "r")
        decoder.extradata = configuration
        decoder.thread_count = 1  # album photos already run one per core
        frames = []
        for packet in [av.Packet(container.data(item)) for item in tiles] + [None]:
            for frame in decoder.decode(packet):
                if (frame.width, frame.height) != tile or frame.format.name not in ("yuv420p", "yuvj420p"):
                    raise _Unsupported("a tile of another size or format than its item says")
                frames.append(frame)
        if len(frames) != len(tiles):
            raise _Unsupported("tiles that did not decode")
        planes = _ycbcr_planes(frames, columns, rows, tile, size)
        matrix, full_range = _colour(container, frames[0])
    except (_Unsupported, av.FFmpegError, IndexError, ValueError, struct.error):
        return None
    stored = shown if turns % 2 == 0 else (shown[1], shown[0])
    reduced = [np.asarray(Image.fromarray(plane).resize(stored, Image.Resampling.BILINEAR)) for plane in planes]
    image = Image.fromarray(_to_rgb(reduced, matrix, full_range))
    if turns:
        image = image.transpose((None, Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180,
                                 Image.Transpose.ROTATE_270)[turns])
    return image
