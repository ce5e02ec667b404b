"""Derived precisions of an fp32 ONNX model: fp16, int8 static (QDQ) and int8 dynamic.

Each recipe is deterministic: the same parent file, recipe and calibration inputs give the same bytes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

if TYPE_CHECKING:
    from models.catalog import Recipe

# An augmented batch of input tensors, drawn with the generator: (size, *input shape).
Batches = Callable[[np.random.Generator, int], np.ndarray]

# Bump when a recipe's code changes what it writes, so cached files of the old code are not reused.
RECIPE_VERSION = 2  # 2: calibration tensors of BGR cards with a mean were made wrong by version 1


def to_fp16(src: Path, dst: Path) -> None:
    """Weights and activations in fp16; the graph's inputs and outputs stay fp32 for the caller."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))


def to_int8_dynamic(src: Path, dst: Path) -> None:
    """int8 weights; activations quantized at run time from each tensor's own range.

    uint8 weights: ORT's CPU ConvInteger has no kernel for int8 weights.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QUInt8, per_channel=True)


class _Calibration:
    """onnxruntime CalibrationDataReader over preprocessed input tensors."""

    def __init__(self, input_name: str, tensors: Iterable[np.ndarray]):
        self._feeds = iter([{input_name: np.asarray(t, dtype=np.float32)} for t in tensors])

    def get_next(self):
        return next(self._feeds, None)


def prepare(src: Path, folder: Path) -> Path:
    """The float graph the quantizer works on (opset >= 13, shapes inferred, fused): its tensor names are the
    ones an int8 static file's tensors are matched with."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = folder / "prepared.onnx"
    quant_pre_process(str(_at_least_opset_13(src, folder)), str(prepared), skip_symbolic_shape=True)
    return prepared


def nodes_around(graph: onnx.GraphProto, tensors: Iterable[str]) -> list[str]:
    """The nodes to leave unquantized so these activation tensors stay float: each one's producer and
    every consumer (ORT puts a Q/DQ pair on a tensor where a quantized node writes or reads it)."""
    wanted, names = set(tensors), []
    unknown = wanted - {o for n in graph.node for o in n.output}
    if unknown:
        raise ValueError(f"keep_float names tensors the graph does not have: {sorted(unknown)[:3]}")
    for node in graph.node:
        if wanted & set(node.output) or wanted & set(node.input):
            names.append(node.name)
    return names


def float_source(src: Path, folder: Path, calibration: Callable[[], Iterable[np.ndarray]], equalize: bool) -> Path:
    """The float graph an int8 static file is quantized from, and so the one its tensors compare with: the parent
    itself, or (equalize) its copy with activation ranges equalized on the calibration inputs (the same function,
    channels scaled inside; models/equalize.py)."""
    if not equalize:
        return src
    from models.equalize import equalize as equalized

    path = folder / "equalized.onnx"
    onnx.save(equalized(onnx.load(str(src)), calibration()), str(path))
    return path


def to_int8_static(src: Path, dst: Path, calibration: Iterable[np.ndarray], keep_float: Iterable[str] = (),
                   equalize: bool = False, bias_correct: bool = False, fine_tune: Batches | None = None) -> None:
    """QDQ graph, per-channel int8 weights, uint8 activations with ranges from the calibration inputs;
    `keep_float` activation tensors (and the nodes around them) stay float; `equalize`: activation ranges
    equalized across channels first; `bias_correct`: each convolution's bias then takes back the mean error its
    weights' rounding adds on the calibration inputs; `fine_tune`: its int8 weights, biases and activation scales
    then learn the float graph's outputs on these batches (models/fine_tune.py).

    uint8 activations with int8 weights is the pairing ORT's x86 kernels run fast.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    tensors = list(calibration)
    if not tensors:
        raise ValueError("calibration failed: no calibration inputs")
    input_name = onnx.load(str(src), load_external_data=False).graph.input[0].name
    _check_finite(src, input_name, tensors)
    with tempfile.TemporaryDirectory(prefix="mvl-quant-") as tmp:
        prepared = prepare(float_source(src, Path(tmp), lambda: tensors, equalize), Path(tmp))
        exclude = nodes_around(onnx.load(str(prepared)).graph, keep_float) if keep_float else []
        try:
            quantize_static(
                str(prepared),
                str(dst),
                _Calibration(input_name, tensors),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                nodes_to_exclude=exclude,
            )
        except AssertionError as exc:  # the quantizer asserts on unusable ranges
            raise ValueError(f"calibration failed in the quantizer: {exc}") from exc
        if bias_correct or fine_tune:
            qdq, float_model = onnx.load(str(dst)), onnx.load(str(prepared))
            if bias_correct:
                from models.bias_correction import correct_biases

                correct_biases(qdq, float_model, tensors)
            if fine_tune:
                from models.fine_tune import fine_tune as fine_tuned

                fine_tuned(qdq, float_model, fine_tune)
            onnx.save(qdq, str(dst))


def _at_least_opset_13(src: Path, tmp: Path) -> Path:
    """Per-channel QDQ needs DequantizeLinear's axis attribute, which opset 13 introduced."""
    model = onnx.load(str(src))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    if opset >= 13:
        return src
    from onnx import version_converter

    converted = tmp / "opset13.onnx"
    onnx.save(version_converter.convert_version(model, 13), str(converted))
    return converted


def _check_finite(src: Path, input_name: str, tensors: list[np.ndarray]) -> None:
    """Activation ranges cannot be set from NaN or infinite values: say so instead of a quantizer assert."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    for tensor in tensors:
        for output in session.run(None, {input_name: np.asarray(tensor, np.float32)}):
            if np.issubdtype(output.dtype, np.floating) and not np.all(np.isfinite(output)):
                raise ValueError(
                    "calibration failed: the model gives NaN or infinite values on the calibration photos, "
                    "so no activation ranges can be set"
                )


def derive(kind: str, src: Path, dst: Path, calibration: Callable[[], Iterable[np.ndarray]] | None,
           keep_float: Iterable[str] = (), equalize: bool = False, bias_correct: bool = False,
           fine_tune: Batches | None = None) -> None:
    if kind == "fp16":
        to_fp16(src, dst)
    elif kind == "int8_dynamic":
        to_int8_dynamic(src, dst)
    elif kind == "int8_static":
        to_int8_static(src, dst, calibration(), keep_float, equalize, bias_correct, fine_tune)
    else:
        raise ValueError(f"unknown recipe kind {kind!r}")


def derive_recipe(recipe: Recipe, src: Path, dst: Path, calibration: Callable[[], Iterable[np.ndarray]] | None) -> None:
    """A card's recipe carried out with every option it names, whether the card is the catalog's or an upload's.
    calibration: None for fp16 and int8 dynamic; for a recipe that fine-tunes, it also has `batch` (Batches)."""
    derive(recipe.kind, src, dst, calibration, recipe.keep_float, recipe.equalize, recipe.bias_correct,
           calibration.batch if recipe.fine_tune else None)
