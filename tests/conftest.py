"""Shared fixtures: the real weights and photos in ../shared (or where MVL_MODEL_DIRS / MVL_SHARED_DIR say)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from PIL import Image

from models.hub import ModelHub
from models.store import ModelStore
from pipelines.common.calibration import sample_photo_paths
from pipelines.common.hub import open_hub
from tests.helpers import MODEL_DIRS, free_port

# the fuzz tests draw the same examples on every run: a suite that passes once passes again
settings.register_profile("deterministic", derandomize=True, database=None)
settings.load_profile("deterministic")


@pytest.fixture(scope="session", autouse=True)
def no_client_download_folders():
    """gradio_client downloads each result file through a folder of its own, <temp>/<40 hex digits>, and
    leaves it behind empty: about 1,200 a run. Those the session made are removed at its end."""
    root = Path(tempfile.gettempdir())
    before = set(root.iterdir())
    yield
    for path in set(root.iterdir()) - before:
        if re.fullmatch(r"[0-9a-f]{40}", path.name) and path.is_dir() and not any(path.iterdir()):
            path.rmdir()


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


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """Where saved galleries go during the tests."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def served_app(store, data_dir):
    """The whole app, launched on 127.0.0.1 inside the test session: (Blocks, url)."""
    import app

    os.environ["MVL_DATA_DIR"] = str(data_dir)

    demo = app.build_app(store)
    port = free_port()
    app.serve(demo, port=port, block=False, quiet=True)
    yield demo, f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="session")
def app_url(served_app):
    return served_app[1]


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
