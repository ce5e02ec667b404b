"""SqueezeNet 1.1 with batch norm, trained on Places365 (urbste/squeezenet_places365, a Lasagne network), as
the catalog's ONNX contract: BGR 0..255 NCHW [1, 3, 224, 224]; the centre 224x224 of the Places365 mean
image subtracted and the result divided by 255 inside the graph; 365 softmax probabilities out.

The .params pickle holds 152 arrays in the order of the Lasagne network's parameters: conv1 (W, b) and its
batch norm (beta, gamma, mean, inv_std), then per fire block squeeze, expand 1x1 and expand 3x3, each a
conv with its batch norm, then conv10 (W, b). Lasagne convolves with flipped filters (flip_filters=True): the
kernels are flipped back for ONNX's cross-correlation. Activations are Lasagne's randomized leaky ReLU, whose
inference slope is the mean of its bounds (0.3 and 0.8): 0.55.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from models.rebuild.graph import GraphWriter, fold_batch_norm
from models.rebuild.pickles import numpy_arrays

LEAKY_SLOPE = (0.3 + 0.8) / 2
FIRE_BLOCKS = ((16, 64), (16, 64), "pool", (32, 128), (32, 128), "pool", (48, 192), (48, 192), (64, 256), (64, 256))
SIZE = 224


def caffe_mean_image(data: bytes) -> np.ndarray:
    """The float data of a Caffe BlobProto ([channels, height, width]), read from the protobuf wire format."""
    fields, position = {}, 0

    def varint() -> int:
        nonlocal position
        value, shift = 0, 0
        while True:
            byte = data[position]
            position += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while position < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields[number] = varint()
        elif wire == 2:
            length = varint()
            fields[number] = data[position:position + length]
            position += length
        else:
            raise ValueError(f"unexpected protobuf wire type {wire} in the mean image")
    shape = (fields.get(2, 1), fields.get(3, 1), fields.get(4, 1))
    return np.frombuffer(fields[5], "<f4").reshape(shape)


def _conv_bn(writer: GraphWriter, x: str, params: list[np.ndarray], stride: int = 1) -> str:
    w, b, beta, gamma, mean, inv_std = (params.pop(0) for _ in range(6))
    w, b = fold_batch_norm(w[:, :, ::-1, ::-1], b, gamma, beta, mean, inv_std)
    pad = w.shape[2] // 2  # Lasagne 'same' for odd kernels
    return writer.node("LeakyRelu", [writer.conv(x, w, b, stride, (pad,) * 4)], alpha=LEAKY_SLOPE)


def build(sources: dict[str, Path], out: Path) -> None:
    with sources["squeezenet_weights_places365.params"].open("rb") as fh:
        params = [np.asarray(p, np.float32) for p in numpy_arrays(fh)]
    if len(params) != 152:
        raise ValueError(f"expected 152 parameter arrays, found {len(params)}")
    mean = caffe_mean_image(sources["places365CNN_mean.binaryproto"].read_bytes())
    top = (mean.shape[1] - SIZE) // 2
    left = (mean.shape[2] - SIZE) // 2
    crop = np.ascontiguousarray(mean[None, :, top:top + SIZE, left:left + SIZE], np.float32)
    writer = GraphWriter("squeezenet1.1_bn_places365")
    x = writer.node("Sub", ["input_bgr_0_255", writer.constant(crop, "mean")])
    x = writer.node("Div", [x, writer.constant(np.array(255.0, np.float32))])
    x = _conv_bn(writer, x, params, stride=2)
    x = writer.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2])
    for block in FIRE_BLOCKS:
        if block == "pool":
            x = writer.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2])
            continue
        squeeze = _conv_bn(writer, x, params)
        x = writer.node("Concat", [_conv_bn(writer, squeeze, params), _conv_bn(writer, squeeze, params)], axis=1)
    w10, b10 = params.pop(0)[:, :, ::-1, ::-1], params.pop(0)
    x = writer.node("LeakyRelu", [writer.conv(x, w10, b10)], alpha=LEAKY_SLOPE)
    x = writer.node("ReduceMean", [x], axes=[2, 3], keepdims=0)
    writer.node("Softmax", [x], "prob", axis=1)
    onnx.save(writer.model("input_bgr_0_255", [1, 3, SIZE, SIZE], "prob", [1, w10.shape[0]]), str(out))
