from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
import pytest
from ai_edge_litert.interpreter import Interpreter

from models.backends import BackendError, backend_class
from models.backends.litert import dequantize, quantize

RNG = np.random.default_rng(0)


def test_quantize_inverts_the_cards_real_value_contract():
    pixels = np.arange(256, dtype=np.float32)
    real = (pixels - 128.0) / 128.0  # what a Coral MobileNet card declares
    assert np.array_equal(quantize(real, np.dtype(np.uint8), 1 / 128, 128), pixels.astype(np.uint8))
    real_ptq = (pixels - 127.0) / 127.5  # the TF2 post-training file's (scale, zero point)
    assert np.array_equal(quantize(real_ptq, np.dtype(np.uint8), 1 / 127.5, 127), pixels.astype(np.uint8))
    assert np.allclose(dequantize(np.array([0, 128, 255], np.uint8), 1 / 256, 0), [0, 0.5, 255 / 256])


def test_quantize_saturates_instead_of_wrapping():
    assert quantize(np.array([-5.0, 5.0]), np.dtype(np.int8), 0.01, 0).tolist() == [-128, 127]


def test_litert_backend_equals_a_bare_interpreter(store):
    path = store.resolve("mobilenet_v2_1.0_224.uint8_qat_tflite").path
    backend = backend_class("tflite")(path, threads=1)
    pixels = RNG.integers(0, 256, (1, 224, 224, 3)).astype(np.uint8)
    bare = Interpreter(model_path=str(path), num_threads=1)
    bare.allocate_tensors()
    bare.set_tensor(bare.get_input_details()[0]["index"], pixels)
    bare.invoke()
    out = bare.get_output_details()[0]
    expected = (bare.get_tensor(out["index"]).astype(np.float32) - out["quantization"][1]) * out["quantization"][0]
    (got,) = backend.run((pixels.astype(np.float32) - 128.0) / 128.0)
    assert got.dtype == np.float32 and np.array_equal(got, expected)


def test_onnxruntime_backend_equals_a_bare_session(store):
    path = store.resolve("squeezenet1.1_places365.fp32_onnx").path
    backend = backend_class("onnx")(path, threads=2)
    x = RNG.uniform(0, 255, (1, 3, 224, 224)).astype(np.float32)
    bare = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (expected,) = bare.run(None, {"input_bgr_0_255": x})
    (got,) = backend.run(x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("card", ["mobilenet_v1_0.25_128.uint8_qat_tflite", "squeezenet1.1_places365.fp32_onnx"])
def test_concurrent_calls_give_each_caller_its_own_answer(store, card):
    resolved = store.resolve(card)
    backend = backend_class(resolved.card.runtime)(resolved.path, threads=1)
    shape = tuple(int(d) for d in backend.inputs[0].shape)
    inputs = [RNG.uniform(-1, 1, shape).astype(np.float32) for _ in range(16)]
    alone = [backend.run(x)[0] for x in inputs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda x: backend.run(x)[0], inputs * 3))
    for i, out in enumerate(together):
        np.testing.assert_array_equal(out, alone[i % len(inputs)])


@pytest.mark.parametrize("runtime, suffix", [("onnx", ".onnx"), ("tflite", ".tflite")])
def test_a_file_that_is_not_a_model_is_a_backend_error(tmp_path, runtime, suffix):
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(b"\x00\x01 definitely not a model" * 50)
    with pytest.raises(BackendError, match="broken"):
        backend_class(runtime)(path, threads=1)


def test_wrong_input_shape_is_refused_clearly(store):
    path = store.resolve("mobilenet_v1_0.25_128.uint8_qat_tflite").path
    backend = backend_class("tflite")(path, threads=1)
    with pytest.raises(BackendError, match="shape"):
        backend.run(np.zeros((1, 64, 64, 3), np.float32))


def test_unknown_runtime_is_refused():
    with pytest.raises(BackendError, match="coreml"):
        backend_class("coreml")
