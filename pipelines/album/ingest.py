"""An album as given: files, a folder or a .zip, read with stated limits; duplicates by content once.

Photos are read one at a time where they are (a file, a zip member, bytes already in memory): an album of
hundreds of MB is never held in memory whole."""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

MAX_PHOTOS = 200  # per album in the app; the command line takes any number
MAX_ALBUM_FILE_BYTES = 2 * 1024**3  # one uploaded file (a zip of a trip is hundreds of MB)
MAX_ZIP_MEMBERS = 5000
MAX_ZIP_TOTAL = 4 * 1024**3  # uncompressed bytes; photos are read from the archive one at a time
MAX_ZIP_RATIO = 100  # uncompressed / compressed, per member
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
ARCHIVE_SUFFIXES = {".zip", ".tar", ".gz", ".tgz", ".7z", ".rar", ".bz2", ".xz"}
# what macOS and Windows write beside photos: a zip made in the Finder holds a __MACOSX/._IMG_0001.JPG (not a
# photo) for each photo; counted in one note, not listed one by one nor counted against the album's limit
SYSTEM_FILES = {".ds_store", "thumbs.db", "ehthumbs.db", "desktop.ini", ".localized"}
SYSTEM_FILE = "system file"
_CHUNK = 1 << 20


class AlbumError(ValueError):
    """The album cannot be read as given; the message says why."""


@dataclass(frozen=True)
class ZipMember:
    archive: Path
    index: int  # its place in the archive's directory (names may repeat); read, never extracted to disk
    size: int  # as the archive's header says; reading more or less than this is refused


@dataclass(frozen=True)
class AlbumItem:
    """One photo and where its bytes are: in memory, a file, or a member of a zip. A file's own time is never
    kept: it is not when the photo was taken."""

    name: str  # as given, for display only: never used as a path
    source: bytes | Path | ZipMember = field(repr=False)
    sha256: str | None = None  # of its bytes, once gather() has read them

    @property
    def size(self) -> int:
        if isinstance(self.source, bytes):
            return len(self.source)
        if isinstance(self.source, ZipMember):
            return self.source.size
        return self.source.stat().st_size

    def chunks(self):
        if isinstance(self.source, bytes):
            yield self.source
            return
        if isinstance(self.source, ZipMember):
            with zipfile.ZipFile(self.source.archive) as archive, \
                    archive.open(archive.infolist()[self.source.index]) as fh:
                read = 0
                while chunk := fh.read(_CHUNK):
                    read += len(chunk)
                    if read > self.source.size:
                        raise AlbumError("larger than its header says: not read")
                    yield chunk
            if read != self.source.size:
                raise AlbumError("shorter than its header says: not read")
            return
        with self.source.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                yield chunk

    def read(self) -> bytes:
        return self.source if isinstance(self.source, bytes) else b"".join(self.chunks())

    def digest(self) -> str:
        sha = hashlib.sha256()
        for chunk in self.chunks():
            sha.update(chunk)
        return sha.hexdigest()


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


def is_system_file(name: str) -> bool:
    """macOS's __MACOSX folder and ._ (AppleDouble) files, .DS_Store, Windows's Thumbs.db and desktop.ini."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return bool(parts) and ("__MACOSX" in parts or parts[-1].startswith("._") or parts[-1].lower() in SYSTEM_FILES)


def read_zip(archive_path: Path, name: str | None = None) -> tuple[list[AlbumItem], list[Skipped]]:
    """The photos of a zip, checked against its stated limits before anything is decompressed; each member
    is read later, when its photo is processed."""
    name = name or archive_path.name
    try:
        with zipfile.ZipFile(archive_path) as archive:
            members = [(i, m) for i, m in enumerate(archive.infolist()) if not m.filename.endswith("/")]
    except Exception:  # a damaged archive makes zipfile raise many types (BadZipFile, UnicodeDecodeError, ...)
        raise AlbumError(f"{name} is not a readable .zip file") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise AlbumError(f"{name} has {len(members)} files; the limit is {MAX_ZIP_MEMBERS}")
    total = sum(m.file_size for _, m in members)
    if total > MAX_ZIP_TOTAL:
        raise AlbumError(f"{name} would unpack to {total / 2**20:.0f} MB; the limit is {MAX_ZIP_TOTAL // 2**20} MB")
    items, skipped = [], []
    for index, member in members:
        label = f"{name}/{member.filename}"
        suffix = PurePosixPath(member.filename.replace("\\", "/")).suffix.lower() if member.filename else ""
        if not member.filename:
            skipped.append(Skipped(label, "a file without a name: not read"))
        elif is_system_file(member.filename):
            skipped.append(Skipped(label, SYSTEM_FILE))
        elif _is_unsafe(member.filename):
            skipped.append(Skipped(label, "a path outside the archive (absolute or with '..'): not read"))
        elif suffix in ARCHIVE_SUFFIXES:
            skipped.append(Skipped(label, "an archive inside the archive: not opened"))
        elif suffix not in IMAGE_SUFFIXES:
            skipped.append(Skipped(label, "not a photo"))
        elif member.compress_size and member.file_size / member.compress_size > MAX_ZIP_RATIO:
            skipped.append(Skipped(label, f"compressed more than {MAX_ZIP_RATIO}:1 (a zip bomb?): not unpacked"))
        elif member.flag_bits & 0x1:
            skipped.append(Skipped(label, "encrypted in the archive: not read"))
        else:
            items.append(AlbumItem(label, ZipMember(archive_path, index, member.file_size)))
    return items, skipped


def gather(files: list[tuple[str, bytes | Path]], max_photos: int | None = None) -> AlbumInput:
    """Given files and zips (bytes or paths) -> the photos to process (duplicates by content once, at most
    max_photos). Each photo is hashed as it is read; none is kept in memory."""
    max_photos = max_photos or MAX_PHOTOS
    items, skipped, notes = [], [], []
    for name, source in files:
        suffix = PurePosixPath(name.replace("\\", "/")).suffix.lower()
        if is_system_file(name):
            skipped.append(Skipped(name, SYSTEM_FILE))
        elif suffix == ".zip":
            if isinstance(source, bytes):
                raise AlbumError("a .zip is read from its file")  # a caller's mistake, not a person's
            found, rejected = read_zip(source, PurePosixPath(name.replace("\\", "/")).name)
            items += found
            skipped += rejected
        elif suffix in ARCHIVE_SUFFIXES:
            skipped.append(Skipped(name, "only .zip archives are opened"))
        elif suffix and suffix not in IMAGE_SUFFIXES:
            # a phone's folder holds a video (.MOV) and an edit file (.AAE) beside many photos, a Google Takeout
            # folder a .json: not photos, and not counted against the album's limit (as in a zip)
            skipped.append(Skipped(name, "not a photo"))
        else:  # a photo, or a file without a suffix (read, to see)
            items.append(AlbumItem(name, source))  # the caller's display name: never used as a path
    system = [s for s in skipped if s.reason == SYSTEM_FILE]
    if system:
        skipped = [s for s in skipped if s.reason != SYSTEM_FILE]
        notes.append(f"{len(system)} system file(s) left out (what macOS and Windows keep beside photos: "
                     "__MACOSX, ._ files, .DS_Store, Thumbs.db)")
    seen: dict[str, str] = {}
    unique = []
    for item in items:
        try:
            digest = item.digest()
        except Exception as exc:  # a damaged member, a file gone: zipfile's and the OS's errors vary
            reason = str(exc) if isinstance(exc, AlbumError) else f"damaged or unreadable ({type(exc).__name__}): not read"
            skipped.append(Skipped(item.name, reason))
            continue
        if digest in seen:
            skipped.append(Skipped(item.name, f"the same photo as {seen[digest]}: processed once"))
        else:
            seen[digest] = item.name
            unique.append(replace(item, sha256=digest))
    if len(unique) > max_photos:
        notes.append(f"{len(unique)} photos: only the first {max_photos} (the album limit) are processed")
        unique = unique[:max_photos]
    return AlbumInput(tuple(unique), tuple(skipped), tuple(notes))


def folder_files(folder: Path) -> list[tuple[str, Path]]:
    """Every file under a folder (symbolic links not followed), by its path relative to the folder."""
    return [(str(path.relative_to(folder)), path) for path in sorted(folder.rglob("*"))
            if path.is_file() and not path.is_symlink()]
