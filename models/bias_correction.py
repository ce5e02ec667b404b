"""Empirical bias correction of a QDQ file: each convolution's bias takes back what its int8 weights' rounding
adds to the output on average.

Rounding a filter to int8 adds (W_q - W) x to each output; over the calibration inputs that is, per output
channel, (W_q - W) summed over its taps times the mean of each input channel it reads. Subtracting it from the
bias (Nagel et al. 2019, "Data-Free Quantization", empirical variant) removes the systematic part of the error;
the rest is noise around zero. The float graph given must be the one the file was quantized from (same node
names); padding at the borders is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import onnx
from onnx import numpy_helper

from models.probe import attribute, channel_axes, per_channel


def correct_biases(qdq: onnx.ModelProto, float_model: onnx.ModelProto, inputs: Iterable[np.ndarray]) -> int:
    """Rewrites the int32 biases of qdq's quantized convolutions in place; returns how many were corrected."""
    stored = {t.name: t for t in qdq.graph.initializer}
    float_weights = {t.name: t for t in float_model.graph.initializer}
    writer = {o: n for n in qdq.graph.node for o in n.output}
    float_convs = {n.name: n for n in float_model.graph.node if n.op_type == "Conv" and len(n.input) > 2}

    def dequantized(name: str) -> onnx.NodeProto | None:
        node = writer.get(name)
        return node if node is not None and node.op_type == "DequantizeLinear" and node.input[0] in stored else None

    convs = [(n, float_convs[n.name]) for n in qdq.graph.node if n.op_type == "Conv" and n.name in float_convs
             and len(n.input) > 2 and dequantized(n.input[1]) and dequantized(n.input[2])]
    if not convs:
        return 0
    read = sorted({f.input[0] for _, f in convs})
    means = {name: runs.mean(axis=0) for name, runs in per_channel(
        float_model, read, inputs, lambda value: value.mean(axis=channel_axes(value), dtype=np.float64)).items()}
    for conv, float_conv in convs:
        weight_node, bias_node = dequantized(conv.input[1]), dequantized(conv.input[2])
        scale = numpy_helper.to_array(stored[weight_node.input[1]]).astype(np.float64)
        rounded = numpy_helper.to_array(stored[weight_node.input[0]]).astype(np.float64)
        if len(weight_node.input) > 2 and weight_node.input[2] in stored:  # int8 weights: zero, but say so
            zero = numpy_helper.to_array(stored[weight_node.input[2]]).astype(np.float64)
            rounded = rounded - zero.reshape(-1, *[1] * (rounded.ndim - 1)) if zero.ndim else rounded - zero
        rounded = rounded * scale.reshape(-1, *[1] * (rounded.ndim - 1))
        error = rounded - numpy_helper.to_array(float_weights[float_conv.input[1]]).astype(np.float64)
        groups = attribute(float_conv, "group", 1) or 1
        mean = means[float_conv.input[0]].reshape(groups, error.shape[1])
        mean = mean[np.arange(error.shape[0]) // (error.shape[0] // groups)]  # each output's own input channels
        shift = np.sum(error.sum(axis=tuple(range(2, error.ndim))) * mean, axis=1)
        bias = numpy_helper.to_array(float_weights[float_conv.input[2]]).astype(np.float64) - shift
        bias_scale = numpy_helper.to_array(stored[bias_node.input[1]]).astype(np.float64)
        corrected = np.clip(np.round(bias / bias_scale), -2 ** 31, 2 ** 31 - 1).astype(np.int32)
        stored[bias_node.input[0]].CopyFrom(numpy_helper.from_array(corrected, bias_node.input[0]))
    return len(convs)
