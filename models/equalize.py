"""Activation range equalization: the same float model, with every channel of an activation spanning the same range.

uint8 activations have one scale per tensor, so a channel that spans a tenth of its tensor's range is read with a
tenth of the steps. Where a convolution's output reaches the next convolutions only through operators that commute
with a positive per-channel scale (ReLU, LeakyReLU, max pooling, concatenation along channels), output channel c
can be divided by s_c (its filter and bias) and the next convolutions' input channel c multiplied by s_c: the
float model computes the same, and with s_c proportional to the channel's range on calibration inputs every
channel spans the same range (Nagel et al. 2019, "Data-Free Quantization", equalize the weights this way; here
the activations, as the per-channel weights already have a scale of their own). Sites that do not fit (a ReLU6's
clip, a sigmoid, a tensor read elsewhere) are left as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from models.probe import attribute, channel_axes, per_channel

# These commute with a positive per-channel scale: f(s x) = s f(x).
HOMOGENEOUS = {"Relu", "LeakyRelu", "MaxPool"}
RANGE_FLOOR = 1e-3  # a channel's range counts as at least this share of its site's widest (silent channels)


@dataclass(frozen=True)
class Site:
    """Convolutions whose output channels (in order) reach `readers` only through homogeneous operators."""

    writers: tuple[onnx.NodeProto, ...]
    readers: tuple[onnx.NodeProto, ...]


def sites(graph: onnx.GraphProto) -> list[Site]:
    """Every place in the graph where the equalization is exact."""
    writer = {o: n for n in graph.node for o in n.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    weights = {t.name for t in graph.initializer}
    outputs = {o.name for o in graph.output}

    def is_conv(node: onnx.NodeProto) -> bool:
        return node.op_type == "Conv" and attribute(node, "group", 1) == 1 and node.input[1] in weights \
            and (len(node.input) < 3 or node.input[2] in weights)

    def trace(tensor: str, path: list[str]) -> list[onnx.NodeProto] | None:
        """The convolutions that write this tensor's channels, in channel order (None: not exact here)."""
        node = writer.get(tensor)
        path.append(tensor)
        if node is None:
            return None
        if is_conv(node):
            return [node]
        if node.op_type in HOMOGENEOUS:
            return trace(node.input[0], path)
        if node.op_type == "Concat" and attribute(node, "axis", 0) == 1:
            found = [trace(name, path) for name in node.input]
            return None if any(f is None for f in found) else [c for f in found for c in f]
        return None

    found: dict[tuple[str, ...], tuple[list[onnx.NodeProto], list[onnx.NodeProto], list[str]]] = {}
    for node in graph.node:
        if not is_conv(node):
            continue
        path: list[str] = []
        writers = trace(node.input[0], path)
        if writers is None:
            continue
        key = tuple(w.name for w in writers)
        entry = found.setdefault(key, (writers, [], []))
        entry[1].append(node)
        entry[2].extend(path)
    out = []
    shared = [w for writers, _, _ in found.values() for w in writers]
    for writers, convs, path in found.values():
        on_path = {id(writer[t]) for t in path} | {id(c) for c in convs}
        # exact only if every reader of the path is on it or one of the site's convolutions, and no convolution
        # writes for two sites
        if all(id(r) in on_path for t in path for r in readers.get(t, [])) and not set(path) & outputs \
                and all(sum(w is other for other in shared) == 1 for w in writers):
            out.append(Site(tuple(writers), tuple(convs)))
    return out


def equalize(model: onnx.ModelProto, inputs: Iterable[np.ndarray]) -> onnx.ModelProto:
    """A copy of the model with each site's activation channels scaled to one range (measured on the inputs)."""
    found = sites(model.graph)
    if not found:
        return model
    written = sorted({w.output[0] for site in found for w in site.writers})
    reach = {name: runs.max(axis=0) for name, runs in
             per_channel(model, written, inputs, lambda value: np.abs(value).max(axis=channel_axes(value))).items()}
    graph = model.graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    changed = {}
    for site in found:
        reach_c = np.concatenate([reach[w.output[0]] for w in site.writers]).astype(np.float64)
        reach_c = np.maximum(reach_c, RANGE_FLOOR * reach_c.max())
        scale = reach_c / np.exp(np.mean(np.log(reach_c)))  # a common factor changes nothing
        start = 0
        for w in site.writers:
            part = scale[start:start + weights[w.input[1]].shape[0]]
            start += len(part)
            for name in w.input[1:3]:  # the filter, and the bias if any
                value = changed.get(name, weights[name])
                changed[name] = value / part.reshape(-1, *[1] * (value.ndim - 1))
        for r in site.readers:
            value = changed.get(r.input[1], weights[r.input[1]])
            changed[r.input[1]] = value * scale.reshape(1, -1, *[1] * (value.ndim - 2))
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for t in out.graph.initializer:
        if t.name in changed:
            t.CopyFrom(numpy_helper.from_array(changed[t.name].astype(weights[t.name].dtype), t.name))
    return out
