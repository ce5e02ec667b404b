"""Graph statistics against numbers worked out by hand, and against the figures the authors publish."""

import numpy as np
import pytest
from onnx import helper

from models.catalog import default_catalog
from models.graph_stats import GraphStatsError, graph_stats, onnx_stats
from tests.graphs import save_onnx

RNG = np.random.default_rng(1)


def _save(tmp_path, nodes, inits, in_shape, out_name, out_shape):
    values = {name: RNG.standard_normal(shape).astype(np.float32) for name, shape in inits}
    return save_onnx(tmp_path / "g.onnx", nodes, values, {"x": in_shape}, {out_name: out_shape})


def _only(stats, layer_type):
    row = next(r for r in stats.by_type if r.layer_type == layer_type)
    assert stats.macs == row.macs and stats.params == row.params, "counted under another layer type"
    return row


def test_a_1x1_convolution(tmp_path):
    # 8 -> 16 channels on 10x10: 16*10*10*8 multiply-adds; 8*16 weights + 16 biases
    path = _save(tmp_path, [helper.make_node("Conv", ["x", "w", "b"], ["y"])],
                 [("w", (16, 8, 1, 1)), ("b", (16,))], [1, 8, 10, 10], "y", [1, 16, 10, 10])
    row = _only(onnx_stats(path), "conv_1x1")
    assert (row.layers, row.macs, row.params) == (1, 12_800, 144)


def test_a_depthwise_convolution(tmp_path):
    # 8 channels, 3x3, padding 1 on 10x10: 8*10*10*9; 8*9 weights + 8 biases
    path = _save(tmp_path, [helper.make_node("Conv", ["x", "w", "b"], ["y"], group=8, pads=[1, 1, 1, 1])],
                 [("w", (8, 1, 3, 3)), ("b", (8,))], [1, 8, 10, 10], "y", [1, 8, 10, 10])
    row = _only(onnx_stats(path), "depthwise")
    assert (row.macs, row.params) == (7_200, 80)


def test_a_full_convolution_with_stride(tmp_path):
    # 3 -> 8 channels, 3x3, stride 2, padding 1: 10x10 -> 5x5; 8*5*5*3*9; 8*27 + 8
    path = _save(tmp_path, [helper.make_node("Conv", ["x", "w", "b"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1])],
                 [("w", (8, 3, 3, 3)), ("b", (8,))], [1, 3, 10, 10], "y", [1, 8, 5, 5])
    row = _only(onnx_stats(path), "conv_full")
    assert (row.macs, row.params) == (5_400, 224)


def test_a_dense_layer(tmp_path):
    # Gemm 128 -> 10 with transposed weights [10, 128]: 1280 multiply-adds, 1290 parameters
    path = _save(tmp_path, [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)],
                 [("w", (10, 128)), ("b", (10,))], [1, 128], "y", [1, 10])
    row = _only(onnx_stats(path), "fully_connected")
    assert (row.macs, row.params) == (1_280, 1_290)


def test_a_1x1_convolution_over_a_1x1_map_is_fully_connected(tmp_path):
    # how TensorFlow MobileNets write their classifier: 7x7 kernel over a 7x7 map -> 1x1
    path = _save(tmp_path, [helper.make_node("Conv", ["x", "w"], ["y"])],
                 [("w", (10, 64, 7, 7))], [1, 64, 7, 7], "y", [1, 10, 1, 1])
    row = _only(onnx_stats(path), "fully_connected")
    assert (row.macs, row.params) == (10 * 64 * 49, 10 * 64 * 49)


def test_a_product_of_two_activations_has_no_parameters(tmp_path):
    path = _save(tmp_path, [helper.make_node("MatMul", ["x", "x"], ["y"])], [], [4, 4], "y", [4, 4])
    stats = onnx_stats(path)
    assert stats.macs == 0 and stats.params == 0


def mobilenet_v1(alpha: float, resolution: int, classes: int = 1001) -> tuple[int, int]:
    """Multiply-adds and parameters of MobileNet v1 worked out from the paper's Table 1 (batch-norm folded
    into biases, classifier as the paper's fully connected layer)."""
    def c(n):
        return int(n * alpha)
    hw = resolution // 2
    macs, params = hw * hw * 3 * 9 * c(32), 3 * 9 * c(32) + c(32)
    blocks = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2)] + \
        [(512, 512, 1)] * 5 + [(512, 1024, 2), (1024, 1024, 1)]
    for cin, cout, stride in blocks:
        hw = hw // stride if stride == 2 else hw
        macs += hw * hw * c(cin) * 9 + hw * hw * c(cin) * c(cout)
        params += c(cin) * 9 + c(cin) + c(cin) * c(cout) + c(cout)
    return macs + c(1024) * classes, params + c(1024) * classes + classes


def efficientnet_lite0() -> tuple[int, int]:
    """From the EfficientNet-B0 stage table without squeeze-excitation (the Lite change)."""
    stages = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
              (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]
    hw, macs, params = 112, 112 * 112 * 32 * 27, 27 * 32 + 32
    for expand, kernel, stride, first_in, out, repeats in stages:
        for i in range(repeats):
            cin = first_in if i == 0 else out
            mid = cin * expand
            if expand != 1:
                macs, params = macs + hw * hw * cin * mid, params + cin * mid + mid
            hw = hw // (stride if i == 0 else 1)
            macs += hw * hw * mid * kernel * kernel + hw * hw * mid * out
            params += mid * kernel * kernel + mid + mid * out + out
    macs += hw * hw * 320 * 1280 + 1280 * 1000
    return macs, params + 320 * 1280 + 1280 + 1280 * 1000 + 1000


CATALOG = default_catalog()
# (card, published multiply-adds, published parameters, worked out by hand)
PUBLISHED = [
    ("mobilenet_v1_0.25_128.uint8_qat_tflite", 14e6, 0.47e6, mobilenet_v1(0.25, 128)),
    ("mobilenet_v1_0.5_160.uint8_qat_tflite", 77e6, 1.32e6, mobilenet_v1(0.5, 160)),
    ("mobilenet_v1_0.75_192.uint8_qat_tflite", 233e6, 2.59e6, mobilenet_v1(0.75, 192)),
    ("mobilenet_v2_1.0_224.uint8_qat_tflite", 300e6, 3.47e6, None),
    ("mobilenet_v2_1.0_224.int8_ptq_tflite", 300e6, 3.47e6, None),
    # tensorflow/tpu efficientnet/lite README: 4.7M params, 407M MAdds (see the test below for the MAdds)
    ("efficientnet_lite0.fp32_onnx", None, 4.7e6, efficientnet_lite0()),
]


@pytest.mark.parametrize("name, macs, params, by_hand", PUBLISHED, ids=[p[0] for p in PUBLISHED])
def test_real_files_match_the_published_figures_within_5_percent(store, name, macs, params, by_hand):
    card = CATALOG[name]
    stats = graph_stats(store.resolve(card).path, card.runtime)
    if macs:
        assert stats.macs == pytest.approx(macs, rel=0.05)
    assert stats.params == pytest.approx(params, rel=0.05)
    if by_hand:
        assert (stats.macs, stats.params) == by_hand


def test_efficientnet_lite0_multiply_adds_against_the_readme(store):
    """The README's 407M is 5.4% above the conv + fully-connected count of the architecture it describes
    (385.2M, also what independent reimplementations report), so it counts something more; the graph
    agrees with the architecture exactly (above). Recorded, not hidden: this asserts the measured gap."""
    stats = graph_stats(store.resolve("efficientnet_lite0.fp32_onnx").path, "onnx")
    assert stats.macs == efficientnet_lite0()[0]
    assert 0.05 < 1 - stats.macs / 407e6 < 0.06


def test_mobilenet_v1_layer_shares_look_like_the_papers_table_2(store):
    # Paper (1.0 MobileNet-224): 1x1 conv 95% of multiply-adds, 75% of parameters; fully connected 24% of
    # parameters. Smaller widths move weight to the classifier, the ordering stays.
    stats = graph_stats(store.resolve("mobilenet_v1_0.75_192.uint8_qat_tflite").path, "tflite")
    conv1x1_macs, conv1x1_params = stats.share("conv_1x1")
    assert conv1x1_macs > 0.9 and conv1x1_params > 0.6
    assert stats.share("fully_connected")[1] > 0.25 and stats.share("depthwise")[0] < 0.05


@pytest.mark.parametrize("card", [c for c in CATALOG if c.is_derived], ids=lambda c: c.name)
def test_derived_files_keep_the_parents_arithmetic(hub, card):
    
    derived = graph_stats(hub.load(card, threads=1).file.path, "onnx")
    parent = graph_stats(hub.store.resolve(card.derived_from).path, "onnx")
    assert derived.macs == parent.macs
    assert derived.params == pytest.approx(parent.params, rel=0.01)
    # int8 dynamic and static store the layers' weights in int8 (a mixed recipe keeps a few float), fp16 in fp16
    assert derived.weight_types[0][0] == card.precision and parent.stored_as == "fp32"


@pytest.mark.parametrize("card", [c for c in CATALOG if not c.is_derived], ids=lambda c: c.name)
def test_each_files_weights_are_stored_at_its_cards_precision(store, card):
    open_size = (1, 12, 12, 3) if card.input.layout == "NHWC" else (1, 3, 12, 12)  # MTCNN's P-Net
    stats = graph_stats(store.resolve(card).path, card.runtime, open_size if card.input.height == 0 else None)
    assert stats.stored_as == card.precision


@pytest.mark.parametrize("name", ["blazeface_short_range.fp16_tflite", "blazeface_full_range_sparse.fp16_tflite"])
def test_fp16_tflite_weights_are_counted_once(store, name):
    # BlazeFace keeps each layer's weights as an fp16 constant (sparse in full-range) that DEQUANTIZE (and
    # DENSIFY) expand to fp32 at load: the constant and its expansion are one set of parameters, not two
    from ai_edge_litert.interpreter import Interpreter

    path = store.resolve(name).path
    constants = [t for t in Interpreter(model_path=str(path)).get_tensor_details() if t["dtype"] == np.float16]
    stats = graph_stats(path, "tflite")
    if "sparse" not in name:  # a sparse constant holds only its non-zero values
        assert stats.params == sum(int(np.prod(t["shape"])) for t in constants)
    assert stats.by_type[-1].params == 0 and stats.stored_as == "fp16"


def test_a_file_that_is_not_a_graph_is_refused(tmp_path):
    path = tmp_path / "x.tflite"
    path.write_bytes(b"nope" * 100)
    with pytest.raises(GraphStatsError, match="x.tflite"):
        graph_stats(path, "tflite")
