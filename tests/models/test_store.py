import dataclasses
import functools
import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from models.backends import backend_class
from models.catalog import Source, default_catalog
from models.store import (
    ChecksumMismatchError,
    DownloadError,
    LfsPointerError,
    ModelFileMissingError,
    ModelStore,
    TruncatedFileError,
)
from tests.helpers import MODEL_DIRS

CATALOG = default_catalog()
ORIGINALS = [c for c in CATALOG if not c.is_derived]
SMALL = CATALOG["mobilenet_v1_0.25_128.uint8_qat_tflite"]


@pytest.mark.parametrize("card", ORIGINALS, ids=lambda c: c.name)
def test_every_original_card_resolves_to_its_verified_file_and_loads(store, card):
    resolved = store.resolve(card)
    assert resolved.origin == "local folder"
    assert hashlib.sha256(resolved.path.read_bytes()).hexdigest() == card.sha256
    backend = backend_class(card.runtime)(resolved.path, threads=1)
    assert len(backend.inputs) == 1
    if card.output.kind != "detections":  # classifiers and embedders: one vector out
        assert len(backend.outputs) == 1 and backend.outputs[0].shape[-1] == card.output.classes


def test_constructing_a_store_touches_nothing(tmp_path):
    ModelStore([tmp_path / "absent"], cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def _folder_with(tmp_path: Path, card, content: bytes) -> Path:
    target = tmp_path / "models" / card.file
    target.parent.mkdir(parents=True)
    target.write_bytes(content)
    return tmp_path / "models"


def _original_bytes(card) -> bytes:
    return next(d / card.file for d in MODEL_DIRS if (d / card.file).is_file()).read_bytes()


def test_missing_everywhere_without_download_names_the_file_and_the_fix(tmp_path):
    store = ModelStore([tmp_path], cache_dir=tmp_path / "cache", allow_download=False)
    with pytest.raises(ModelFileMissingError, match=r"coral_mobilenet_v1_0.25_128_quant.tflite.*MVL_MODEL_DIRS"):
        store.resolve(SMALL)


def test_missing_file_without_public_download_says_so(tmp_path):
    store = ModelStore([tmp_path], cache_dir=tmp_path / "cache", allow_download=True)
    with pytest.raises(ModelFileMissingError, match="no public download") as refused:
        store.resolve("retinaface_slim.fp32_onnx")
    # what a person is told names the model and what to do, never a server path
    assert refused.value.person.startswith("RetinaFace-1MB slim (fp32) is not available on this server")
    assert "Choose another model" in refused.value.person and str(tmp_path) not in refused.value.person


def test_wrong_checksum_names_the_file(tmp_path):
    data = bytearray(_original_bytes(SMALL))
    data[len(data) // 2] ^= 0xFF
    folder = _folder_with(tmp_path, SMALL, bytes(data))
    with pytest.raises(ChecksumMismatchError, match=rf"{SMALL.file}.*expects {SMALL.sha256}"):
        ModelStore([folder], cache_dir=tmp_path / "cache", allow_download=False).resolve(SMALL)


def test_git_lfs_pointer_is_named_as_such(tmp_path):
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{SMALL.sha256}\nsize {SMALL.bytes}\n"
    folder = _folder_with(tmp_path, SMALL, pointer.encode())
    with pytest.raises(LfsPointerError, match="git lfs pull"):
        ModelStore([folder], cache_dir=tmp_path / "cache", allow_download=False).resolve(SMALL)


def test_truncated_file_says_how_much_is_there(tmp_path):
    folder = _folder_with(tmp_path, SMALL, _original_bytes(SMALL)[:1000])
    with pytest.raises(TruncatedFileError, match=f"1000 of {SMALL.bytes} bytes"):
        ModelStore([folder], cache_dir=tmp_path / "cache", allow_download=False).resolve(SMALL)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def loopback_server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _served(card, url):
    return dataclasses.replace(card, sources=(Source(what="loopback test server", url=url),))


def test_download_verifies_the_checksum_then_serves_from_cache(tmp_path, loopback_server):
    root, base = loopback_server
    (root / "model.tflite").write_bytes(_original_bytes(SMALL))
    card = _served(SMALL, f"{base}/model.tflite")
    store = ModelStore([], cache_dir=tmp_path / "cache")
    first = store.resolve(card)
    assert first.origin == "download" and first.path == tmp_path / "cache" / SMALL.file
    assert hashlib.sha256(first.path.read_bytes()).hexdigest() == SMALL.sha256
    assert not list(first.path.parent.glob("*.part"))
    assert ModelStore([], cache_dir=tmp_path / "cache", allow_download=False).resolve(card).origin == "cache"


def test_download_with_wrong_checksum_keeps_nothing(tmp_path, loopback_server):
    root, base = loopback_server
    (root / "model.tflite").write_bytes(b"not the model" * 100)
    store = ModelStore([], cache_dir=tmp_path / "cache")
    with pytest.raises(ChecksumMismatchError, match="nothing was kept"):
        store.resolve(_served(SMALL, f"{base}/model.tflite"))
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_failed_download_names_the_url_and_keeps_nothing(tmp_path, loopback_server):
    _, base = loopback_server
    store = ModelStore([], cache_dir=tmp_path / "cache")
    with pytest.raises(DownloadError, match=rf"{base}/absent.tflite.*404"):
        store.resolve(_served(SMALL, f"{base}/absent.tflite"))
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_a_damaged_cached_file_is_replaced_by_a_fresh_download(tmp_path, loopback_server):
    root, base = loopback_server
    (root / "model.tflite").write_bytes(_original_bytes(SMALL))
    cached = tmp_path / "cache" / SMALL.file
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"garbage")
    resolved = ModelStore([], cache_dir=tmp_path / "cache").resolve(_served(SMALL, f"{base}/model.tflite"))
    assert resolved.origin == "download"
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == SMALL.sha256


def test_local_folders_are_searched_in_order(tmp_path):
    folder = _folder_with(tmp_path, SMALL, _original_bytes(SMALL))
    store = ModelStore([tmp_path / "empty", folder], cache_dir=tmp_path / "cache", allow_download=False)
    assert store.resolve(SMALL).path == folder / SMALL.file


def test_from_env_reads_model_dirs_and_offline(monkeypatch, tmp_path):
    import os

    monkeypatch.setenv("MVL_MODEL_DIRS", f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}")
    monkeypatch.setenv("MVL_OFFLINE", "1")
    store = ModelStore.from_env()
    assert store.model_dirs == (tmp_path / "a", tmp_path / "b") and not store.allow_download


def test_a_fine_tuned_variant_without_its_photos_or_pytorch_is_unavailable_and_says_why(tmp_path, monkeypatch):
    from models import fine_tune

    card = "squeezenet1.1_places365.int8_static_onnx"
    store = ModelStore(MODEL_DIRS, cache_dir=tmp_path / "cache", allow_download=False)
    store.calibration_available = lambda name: name != "coco_imagenet"
    availability = store.availability(card)
    assert not availability.available and "fine-tuned on (coco_imagenet)" in availability.how
    store.calibration_available = lambda name: True
    assert store.availability(card).available
    monkeypatch.setattr(fine_tune, "torch_available", lambda: False)
    availability = store.availability(card)
    assert not availability.available and "PyTorch, which is not installed here" in availability.how
