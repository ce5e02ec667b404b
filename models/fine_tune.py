"""Quantization-aware fine-tuning of an int8 static QDQ file, by distillation from the float graph it was made from.

Rounding leaves each weight up to half a step from its float value, and each activation's one uint8 scale adds
noise of its own; a model whose predictions are close calls flips its top-1 on many photos although each
layer's error is small. Here the QDQ graph runs in PyTorch as it runs in ONNX Runtime (weights rounded to their
int8 steps, every quantized activation rounded to its uint8 step and clipped to its range), with the rounding
passed straight through in the backward pass, and it learns to give the float graph's output distribution (KL
divergence of the softmax, Hinton et al. 2015) on augmented photos: its int8 weights (in units of their own
step, so one learning rate suits every layer; the per-channel scales stay), its biases, and each activation's
uint8 scale (its range; the gradient of Esser et al. 2020, "Learned Step Size Quantization"; zero points stay).
Scales that ONNX Runtime needs equal to run max pooling and concatenation on uint8 stay equal, and each int32
bias is written on its input's new scale times its weights': the file keeps its graph and its speed. Convolutions
the recipe keeps float (keep_float) stay the parent's.

Deterministic: the same file, float graph and photos give the same bytes (seeded draws, PyTorch's deterministic
algorithms, a fixed number of threads). Needs PyTorch (requirements-dev.txt); a Space gets the file in its
bundle.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import numpy_helper

from models.derive import Batches
from models.probe import attribute

STEPS = 250
BATCH = 32
# Adam's step at the start (cosine decay to zero): weights in int8 steps, biases as they are, activation scales
# as logarithms
LEARNING_RATE, BIAS_RATE, SCALE_RATE = 0.02, 2e-4, 3e-3
THREADS = 2
SEED = 0

SUPPORTED = {"QuantizeLinear", "DequantizeLinear", "Conv", "Relu", "LeakyRelu", "MaxPool", "Concat", "ReduceMean",
             "GlobalAveragePool", "Softmax", "Sub", "Div", "Add", "Mul", "Flatten"}


def torch_available() -> bool:
    from importlib.util import find_spec

    return find_spec("torch") is not None


class _Graph:
    """A QDQ graph run in PyTorch as ONNX Runtime runs it, up to the logits; learnable: the int8 weights (in units of
    their step), the float biases and each activation scale (as a logarithm). Convolutions a recipe keeps float
    run with the parent's weights, unchanged: the quantized layers learn around them."""

    def __init__(self, qdq: onnx.ModelProto):
        import torch

        unsupported = {n.op_type for n in qdq.graph.node} - SUPPORTED
        if unsupported:
            raise ValueError(f"fine-tuning runs {', '.join(sorted(SUPPORTED))}; this graph has "
                             f"{', '.join(sorted(unsupported))}")
        self.graph = qdq.graph
        self.constants = {t.name: numpy_helper.to_array(t) for t in qdq.graph.initializer}
        self.writer = {o: n for n in qdq.graph.node for o in n.output}
        # each convolution's input, weight and bias DequantizeLinear nodes
        self.convs: dict[str, tuple[onnx.NodeProto, onnx.NodeProto, onnx.NodeProto | None]] = {}
        self.steps, self.biases, self.step_size = {}, {}, {}
        self.float_convs: set[str] = set()
        for node in qdq.graph.node:
            if node.op_type != "Conv":
                continue
            weight = self.writer.get(node.input[1])
            bias = self.writer.get(node.input[2]) if len(node.input) > 2 else None
            reads = self.writer.get(node.input[0])
            if weight is None and node.input[1] in self.constants:  # kept float by the recipe: stays as it is
                self.float_convs.add(node.name)
                continue
            if weight is None or weight.op_type != "DequantizeLinear" or reads is None \
                    or reads.op_type != "DequantizeLinear":
                raise ValueError(f"convolution {node.name} is not quantized: nothing to fine-tune")
            if bias is not None and bias.op_type != "DequantizeLinear":
                raise ValueError(f"convolution {node.name} has no int32 bias to fine-tune")
            self.convs[node.name] = (reads, weight, bias)
            steps = self.constants[weight.input[0]].astype(np.float32)
            scale = self.constants[weight.input[1]].astype(np.float32)
            self.step_size[node.name] = torch.tensor(scale.reshape((-1,) + (1,) * (steps.ndim - 1)))
            self.steps[node.name] = torch.nn.Parameter(torch.tensor(steps))
            if bias is not None:
                value = self.constants[bias.input[0]].astype(np.float64) * self.constants[bias.input[1]]
                self.biases[node.name] = torch.nn.Parameter(torch.tensor(value, dtype=torch.float32))
        # one learnable scale per group of activation scales that must stay equal: a tensor's Q and DQ share
        # theirs, and ONNX Runtime runs max pooling and concatenation on uint8 only where input and output scales
        # are equal
        group = {name: name for name in self._activation_scales()}

        def root(name: str) -> str:
            while group[name] != name:
                name = group[name]
            return name

        for node in qdq.graph.node:
            if node.op_type in ("MaxPool", "Concat"):
                scales = [self.writer[name].input[1] for name in node.input
                          if name in self.writer and self.writer[name].op_type == "DequantizeLinear"]
                scales += [n.input[1] for n in qdq.graph.node
                           if n.op_type == "QuantizeLinear" and n.input[0] == node.output[0]]
                for name in scales[1:]:
                    group[root(name)] = root(scales[0])
        self.scale_group = {name: root(name) for name in group}
        self.log_scales = {name: torch.nn.Parameter(torch.tensor([float(np.log(self.constants[name]))]))
                           for name in set(self.scale_group.values())}
        self.logits = self._logits_name()

    def _activation_scales(self) -> list[str]:
        return [n.input[1] for n in self.graph.node
                if n.op_type == "QuantizeLinear" and n.input[0] not in self.constants]

    def _logits_name(self) -> str:
        """The tensor the distillation compares: the input of a final Softmax (before its Q/DQ), else the output."""
        def unwrapped(name: str) -> str:
            while name in self.writer and self.writer[name].op_type in ("QuantizeLinear", "DequantizeLinear"):
                name = self.writer[name].input[0]
            return name

        name = unwrapped(self.graph.output[0].name)
        node = self.writer.get(name)
        return unwrapped(node.input[0]) if node is not None and node.op_type == "Softmax" else name

    def parameters(self) -> tuple[list, list, list]:
        return list(self.steps.values()), list(self.biases.values()), list(self.log_scales.values())

    def scale(self, name: str):
        import torch

        return torch.exp(self.log_scales[self.scale_group[name]])

    def __call__(self, x):
        import torch
        import torch.nn.functional as F

        values = {self.graph.input[0].name: x}

        def get(name):
            return values[name] if name in values else torch.tensor(self.constants[name])

        for node in self.graph.node:
            op, out = node.op_type, node.output[0]
            if op == "DequantizeLinear":
                if node.input[0] not in self.constants:  # an activation's: its QuantizeLinear did the rounding
                    values[out] = values[node.input[0]]
            elif op == "QuantizeLinear":
                zero = self.constants[node.input[2]]
                low, high = (0, 255) if zero.dtype == np.uint8 else (-128, 127)
                values[out] = torch._fake_quantize_learnable_per_tensor_affine(
                    values[node.input[0]], self.scale(node.input[1]), torch.tensor([float(zero)]), low, high, 1.0)
            elif op == "Conv":
                if node.name in self.float_convs:
                    weight = get(node.input[1])
                    bias = get(node.input[2]) if len(node.input) > 2 else None
                else:
                    step = self.step_size[node.name]
                    weight = torch.fake_quantize_per_channel_affine(
                        self.steps[node.name] * step, step.reshape(-1), torch.zeros(len(step), dtype=torch.int32),
                        0, -127, 127)
                    bias = self.biases.get(node.name)
                pads = attribute(node, "pads", [0, 0, 0, 0])
                if pads[:2] != pads[2:]:
                    raise ValueError(f"convolution {node.name} has asymmetric padding")
                values[out] = F.conv2d(values[node.input[0]], weight, bias, attribute(node, "strides", [1, 1]),
                                       tuple(pads[:2]), attribute(node, "dilations", [1, 1]),
                                       attribute(node, "group", 1))
            elif op == "Relu":
                values[out] = F.relu(values[node.input[0]])
            elif op == "LeakyRelu":
                values[out] = F.leaky_relu(values[node.input[0]], attribute(node, "alpha", 0.01))
            elif op == "MaxPool":
                if any(attribute(node, "pads", [0])):
                    raise ValueError(f"max pooling {node.name} is padded")
                values[out] = F.max_pool2d(values[node.input[0]], attribute(node, "kernel_shape"),
                                           attribute(node, "strides"),
                                           ceil_mode=bool(attribute(node, "ceil_mode", 0)))
            elif op == "Concat":
                values[out] = torch.cat([values[name] for name in node.input], attribute(node, "axis"))
            elif op == "ReduceMean":
                values[out] = values[node.input[0]].mean(dim=tuple(attribute(node, "axes")),
                                                         keepdim=bool(attribute(node, "keepdims", 1)))
            elif op == "GlobalAveragePool":
                values[out] = values[node.input[0]].mean(dim=(2, 3), keepdim=True)
            elif op == "Flatten":
                values[out] = torch.flatten(values[node.input[0]], attribute(node, "axis", 1))
            elif op == "Softmax":
                values[out] = torch.softmax(values[node.input[0]], attribute(node, "axis", -1))
            else:  # Sub, Div, Add, Mul
                a, b = get(node.input[0]), get(node.input[1])
                values[out] = {"Sub": torch.sub, "Div": torch.div, "Add": torch.add, "Mul": torch.mul}[op](a, b)
            if out == self.logits:
                return values[out]
        return values[self.logits]

    def write(self, qdq: onnx.ModelProto) -> None:
        """The learned activation scales, int8 weights and int32 biases into qdq (each bias on the scale ONNX Runtime
        expects: its input's scale times its weights')."""
        import torch

        stored = {t.name: t for t in qdq.graph.initializer}
        for name in self.scale_group:
            value = np.asarray(self.scale(name).item(), np.float32)
            stored[name].CopyFrom(numpy_helper.from_array(value, name))
        for name, (reads, weight, bias) in self.convs.items():
            steps = torch.clamp(torch.round(self.steps[name]), -127, 127).detach().numpy().astype(np.int8)
            stored[weight.input[0]].CopyFrom(numpy_helper.from_array(steps, weight.input[0]))
            if bias is None:
                continue
            input_scale = float(np.float32(self.scale(reads.input[1]).item()))
            bias_scale = (input_scale * self.step_size[name].reshape(-1).numpy()).astype(np.float32)
            value = np.round(self.biases[name].detach().numpy().astype(np.float64) / bias_scale)
            stored[bias.input[1]].CopyFrom(numpy_helper.from_array(bias_scale, bias.input[1]))
            stored[bias.input[0]].CopyFrom(numpy_helper.from_array(
                np.clip(value, -2 ** 31, 2 ** 31 - 1).astype(np.int32), bias.input[0]))


def _teacher(float_model: onnx.ModelProto, logits: str) -> Callable[[np.ndarray], np.ndarray]:
    """The float graph in ONNX Runtime, giving the tensor the student's logits are compared with."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(float_model)
    if logits not in {o.name for o in probe.graph.output}:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(logits, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    name = float_model.graph.input[0].name
    return lambda x: np.concatenate([session.run([logits], {name: x[i:i + 1]})[0] for i in range(len(x))])


def fine_tune(qdq: onnx.ModelProto, float_model: onnx.ModelProto, batches: Batches, steps: int = STEPS,
              batch: int = BATCH, progress: Callable[[int, float], None] | None = None) -> None:
    """Rewrites qdq's activation scales, int8 weights and int32 biases in place; `float_model` is the graph it was
    quantized from (same tensor names). `progress(step, loss)` is told after each step."""
    if not torch_available():
        raise RuntimeError("fine-tuning needs PyTorch (pip install -r requirements-dev.txt)")
    import torch

    graph = _Graph(qdq)
    teacher = _teacher(float_model, graph.logits)
    torch.manual_seed(SEED)
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        weights, biases, scales = graph.parameters()
        optimizer = torch.optim.Adam([{"params": weights, "lr": LEARNING_RATE},
                                      {"params": biases, "lr": BIAS_RATE},
                                      {"params": scales, "lr": SCALE_RATE}])
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
        rng = np.random.default_rng(SEED)
        for step in range(steps):
            x = np.ascontiguousarray(batches(rng, batch), dtype=np.float32)
            target = torch.log_softmax(torch.from_numpy(teacher(x)), dim=1)
            loss = torch.nn.functional.kl_div(torch.log_softmax(graph(torch.from_numpy(x)), dim=1), target,
                                              log_target=True, reduction="batchmean")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            if progress:
                progress(step, float(loss))
        graph.write(qdq)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
