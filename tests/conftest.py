"""Shared fixtures: the real weights and photos in ../shared (or where MVL_MODEL_DIRS / MVL_SHARED_DIR say)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from models.hub import ModelHub
from models.store import ModelStore
from pipelines.common.calibration import sample_photo_paths
from pipelines.common.hub import open_hub

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MVL_SHARED_DIR", ROOT.parent / "shared")).resolve()
MODEL_DIRS = [Path(d).resolve() for d in os.environ.get("MVL_MODEL_DIRS", str(SHARED / "models")).split(os.pathsep) if d]
EVAL = SHARED / "eval"
DATA_LATENCY = ROOT / "models" / "data" / "phone_latency.csv"


@pytest.fixture(scope="session")
def derived_cache(tmp_path_factory) -> Path:
    """A fresh cache per test session, so derived files are made by the code under test."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def store(derived_cache) -> ModelStore:
    return ModelStore(MODEL_DIRS, cache_dir=derived_cache, allow_download=False)


@pytest.fixture(scope="session")
def hub(store) -> ModelHub:
    return open_hub(store)


@pytest.fixture(scope="session")
def sample_photos() -> dict[str, Image.Image]:
    """scikit-image's bundled colour photos by stem: chelsea (a cat), coffee, astronaut, rocket..."""
    photos = {}
    for path in sample_photo_paths():
        with Image.open(path) as image:
            photos[path.stem] = image.convert("RGB")
    return photos


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """Where saved galleries go during the tests."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def app_url(store, data_dir):
    """The whole app, launched on 127.0.0.1 inside the test session."""
    import app

    os.environ["MVL_DATA_DIR"] = str(data_dir)

    demo = app.build_app(store)
    port = _free_port()
    app.serve(demo, port=port, block=False, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def _client(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    yield client
    client.close()


@pytest.fixture
def client(app_url):
    """A person's session with the app."""
    yield from _client(app_url)


@pytest.fixture
def other_client(app_url):
    """Someone else's session, at the same time."""
    yield from _client(app_url)


@pytest.fixture
def coffee_jpg(tmp_path, sample_photos) -> Path:
    """The coffee sample photo as a JPEG file (every ImageNet card says espresso)."""
    path = tmp_path / "coffee.jpg"
    sample_photos["coffee"].save(path, quality=95)
    return path
