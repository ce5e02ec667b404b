"""An album as uploaded: files, a folder or a .zip, read with stated limits; duplicates by content once."""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

MAX_PHOTOS = 200
MAX_ZIP_MEMBERS = 2000
MAX_ZIP_TOTAL = 1024 * 1024 * 1024  # uncompressed bytes
MAX_ZIP_RATIO = 100  # uncompressed / compressed, per member
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
ARCHIVE_SUFFIXES = {".zip", ".tar", ".gz", ".tgz", ".7z", ".rar", ".bz2", ".xz"}


class AlbumError(ValueError):
    """The album cannot be read as given; the message says why."""


@dataclass(frozen=True)
class AlbumItem:
    name: str  # as uploaded, for display only: never used as a path
    data: bytes = field(repr=False)  # a file's own time is never kept: it is not when the photo was taken


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


@dataclass(frozen=True)
class AlbumInput:
    items: tuple[AlbumItem, ...]
    skipped: tuple[Skipped, ...]
    notes: tuple[str, ...]


def _is_unsafe(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":")


def read_zip(data: bytes, name: str = "album.zip") -> tuple[list[AlbumItem], list[Skipped]]:
    """Members of a zip, checked against its stated limits before anything is decompressed."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception:  # a damaged archive makes zipfile raise many types (BadZipFile, UnicodeDecodeError, ...)
        raise AlbumError(f"{name} is not a readable .zip file") from None
    members = [m for m in archive.infolist() if not m.filename.endswith("/")]
    if len(members) > MAX_ZIP_MEMBERS:
        raise AlbumError(f"{name} has {len(members)} files; the limit is {MAX_ZIP_MEMBERS}")
    total = sum(m.file_size for m in members)
    if total > MAX_ZIP_TOTAL:
        raise AlbumError(f"{name} would unpack to {total / 2**20:.0f} MB; the limit is {MAX_ZIP_TOTAL // 2**20} MB")
    items, skipped = [], []
    for member in members:
        label = f"{name}/{member.filename}"
        suffix = PurePosixPath(member.filename).suffix.lower() if member.filename else ""
        if not member.filename:
            skipped.append(Skipped(label, "a file without a name: not read"))
        elif _is_unsafe(member.filename):
            skipped.append(Skipped(label, "a path outside the archive (absolute or with '..'): not read"))
        elif suffix in ARCHIVE_SUFFIXES:
            skipped.append(Skipped(label, "an archive inside the archive: not opened"))
        elif suffix not in IMAGE_SUFFIXES:
            skipped.append(Skipped(label, "not a photo"))
        elif member.compress_size and member.file_size / member.compress_size > MAX_ZIP_RATIO:
            skipped.append(Skipped(label, f"compressed more than {MAX_ZIP_RATIO}:1 (a zip bomb?): not unpacked"))
        else:
            try:
                with archive.open(member) as fh:
                    content = fh.read(member.file_size + 1)
            except Exception as exc:  # damaged, encrypted or an unsupported compression: zipfile's errors vary
                skipped.append(Skipped(label, f"damaged or unreadable in the archive ({type(exc).__name__}): not read"))
                continue
            if len(content) > member.file_size:
                skipped.append(Skipped(label, "larger than its header says: not read"))
                continue
            items.append(AlbumItem(label, content))
    return items, skipped


def gather(files: list[tuple[str, bytes]], max_photos: int | None = None) -> AlbumInput:
    """Uploaded files and zips -> the photos to process (duplicates by content once, at most max_photos)."""
    max_photos = max_photos or MAX_PHOTOS
    items, skipped, notes = [], [], []
    for name, data in files:
        suffix = Path(name).suffix.lower()
        if suffix == ".zip":
            found, rejected = read_zip(data, Path(name).name)
            items += found
            skipped += rejected
        elif suffix in ARCHIVE_SUFFIXES:
            skipped.append(Skipped(name, "only .zip archives are opened"))
        else:
            items.append(AlbumItem(name, data))  # the caller's display name: never used as a path
    seen: dict[str, str] = {}
    unique = []
    for item in items:
        digest = hashlib.sha256(item.data).hexdigest()
        if digest in seen:
            skipped.append(Skipped(item.name, f"the same photo as {seen[digest]}: processed once"))
        else:
            seen[digest] = item.name
            unique.append(item)
    if len(unique) > max_photos:
        notes.append(f"{len(unique)} photos: only the first {max_photos} (the album limit) are processed")
        unique = unique[:max_photos]
    return AlbumInput(tuple(unique), tuple(skipped), tuple(notes))


def folder_files(folder: Path) -> list[tuple[str, bytes]]:
    return [(str(path.relative_to(folder)), path.read_bytes()) for path in sorted(folder.rglob("*"))
            if path.is_file() and not path.is_symlink()]
