"""The model store: resolves a card to a verified local file.

Order: the folders named by MVL_MODEL_DIRS (os.pathsep-separated), then the user cache, then a download
from the card's pinned public source into the cache (written to a .part file, renamed only once its
sha256 matches). Derived cards are made from their parent on demand and cached by (parent sha256, recipe).
Nothing here runs at import or in a constructor: every file operation happens in resolve().
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

import numpy as np

from models import derive
from models.catalog import Catalog, ModelCard, default_catalog

LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/"
CHUNK = 1 << 20

CalibrationInputs = Callable[[], Iterable[np.ndarray]]


class StoreError(Exception):
    """A model file cannot be had; the message names the file and the fix."""


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


@dataclass(frozen=True)
class ResolvedFile:
    card: ModelCard
    path: Path
    origin: str  # "local folder", "cache", "download" or "derived"
    seconds: float
    sha256: str


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

    @classmethod
    def from_env(cls) -> ModelStore:
        dirs = [d for d in os.environ.get("MVL_MODEL_DIRS", "").split(os.pathsep) if d]
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
                path, origin = self._original(card)
                sha = card.sha256
        return ResolvedFile(card, path, origin, time.perf_counter() - start, sha)

    # -- originals -----------------------------------------------------------------------------

    def local_paths(self, card: ModelCard) -> tuple[Path, ...]:
        """Where a card's file is looked for, in order: each MVL_MODEL_DIRS folder, then the cache."""
        return tuple(folder / card.file for folder in self.model_dirs) + (self.cache_dir / card.file,)

    def _original(self, card: ModelCard) -> tuple[Path, str]:
        *folders, cached = self.local_paths(card)
        for candidate in folders:
            if candidate.is_file():
                self._verify(card, candidate, _FIX_LOCAL)
                return candidate, "local folder"
        if cached.is_file():
            try:
                self._verify(card, cached, "")
                return cached, "cache"
            except StoreError:
                cached.unlink()  # ours to replace
        url = next((s.url for s in card.sources if s.url), None)
        looked = [str(path) for path in self.local_paths(card)]
        if url is None:
            raise ModelFileMissingError(
                f"model file {card.file} for {card.name} is not in {', '.join(looked)} and has no public "
                f"download ({card.sources[0].what}). Fix: put the file in a folder named by MVL_MODEL_DIRS."
            )
        if not self.allow_download:
            raise ModelFileMissingError(
                f"model file {card.file} for {card.name} is not in {', '.join(looked)} and downloads are off "
                f"(MVL_OFFLINE). Fix: put the file in a folder named by MVL_MODEL_DIRS, or allow the download "
                f"from {url}."
            )
        self._download(card, url, cached)
        return cached, "download"

    def _verify(self, card: ModelCard, path: Path, fix: str) -> None:
        stat = path.stat()
        known = self._verified.get(path)
        if known and known[:2] == (stat.st_size, stat.st_mtime_ns) and known[2] == card.sha256:
            return
        fix = fix or "delete it and resolve again"
        with path.open("rb") as fh:
            head = fh.read(len(LFS_POINTER_PREFIX))
        if head == LFS_POINTER_PREFIX:
            raise LfsPointerError(
                f"{path} is a Git LFS pointer, not the model {card.name}. Fix: run 'git lfs pull' where it "
                f"came from, or {fix}."
            )
        if card.bytes is not None and stat.st_size < card.bytes:
            raise TruncatedFileError(
                f"{path} is truncated: {stat.st_size} of {card.bytes} bytes of {card.name}. Fix: {fix}."
            )
        actual = _sha256(path)
        if actual != card.sha256:
            raise ChecksumMismatchError(
                f"{path} has sha256 {actual}, but {card.name} expects {card.sha256}. It is another file "
                f"or a damaged copy. Fix: {fix}."
            )
        self._verified[path] = (stat.st_size, stat.st_mtime_ns, actual)

    def _download(self, card: ModelCard, url: str, target: Path) -> None:
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
                f"download of {card.file} for {card.name} from {url} failed: {exc}. Fix: check the network, "
                f"or put the file in a folder named by MVL_MODEL_DIRS."
            ) from exc
        if digest.hexdigest() != card.sha256:
            part.unlink(missing_ok=True)
            raise ChecksumMismatchError(
                f"download of {card.file} for {card.name} from {url} has sha256 {digest.hexdigest()}, expected "
                f"{card.sha256}; nothing was kept. Fix: the source changed or the transfer was damaged: try "
                f"again, or put the verified file in a folder named by MVL_MODEL_DIRS."
            )
        os.replace(part, target)

    # -- derived -------------------------------------------------------------------------------

    def derived_path(self, card: ModelCard, parent_sha256: str) -> Path:
        """Where a derived file lives: keyed by parent bytes, recipe and the derivation code's version."""
        key = json.dumps(
            {"parent": parent_sha256, "recipe": card.recipe.as_dict(), "version": derive.RECIPE_VERSION},
            sort_keys=True,
        )
        return self.cache_dir / "derived" / f"{card.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.onnx"

    def _derived(self, card: ModelCard, calibration: CalibrationInputs | None) -> tuple[Path, str, str]:
        parent = self.resolve(self.catalog[card.derived_from])
        target = self.derived_path(card, parent.sha256)
        sidecar = target.with_suffix(".json")
        if target.is_file() and sidecar.is_file():
            recorded = json.loads(sidecar.read_text())["sha256"]
            stat = target.stat()
            known = self._verified.get(target)
            if known and known[:2] == (stat.st_size, stat.st_mtime_ns):
                return target, "cache", known[2]
            if _sha256(target) == recorded:
                self._verified[target] = (stat.st_size, stat.st_mtime_ns, recorded)
                return target, "cache", recorded
            target.unlink()
        if card.recipe.kind == "int8_static" and calibration is None:
            raise DerivationError(
                f"{card.name} is calibrated on photos ({card.recipe.calibration}) and none were given. "
                "Fix: resolve it through its pipeline, which supplies the calibration inputs."
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f"{target.name}.{uuid.uuid4().hex}.part")
        try:
            derive.derive(card.recipe.kind, parent.path, part, calibration)
        except Exception as exc:
            part.unlink(missing_ok=True)
            raise DerivationError(f"deriving {card.name} from {parent.card.name} failed: {exc}") from exc
        sha = _sha256(part)
        sidecar.write_text(
            json.dumps({"card": card.name, "parent": parent.card.name, "parent_sha256": parent.sha256,
                        "recipe": card.recipe.as_dict(), "sha256": sha}, indent=1)
        )
        os.replace(part, target)
        stat = target.stat()
        self._verified[target] = (stat.st_size, stat.st_mtime_ns, sha)
        return target, "derived", sha

    def _lock_for(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(name, threading.RLock())
