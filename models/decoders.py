"""Typed decoder settings of detection cards, checked when the catalog loads.

A card's `decoder` table names its kind; each kind is one frozen dataclass here. A typo, a missing or an
extra field fails at catalog load, naming the card and the field, never in the middle of a request.
The code that decodes each kind lives with its task (pipelines.vision), keyed by these classes.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar


class DecoderConfigError(ValueError):
    """A decoder table is malformed; the message names the field."""


@dataclass(frozen=True)
class BlazeFaceDecoder:
    """SSD anchors. grids: (cells per side, anchors per cell) in output order; coordinates in input pixels
    divided by `scale`."""

    kind: ClassVar[str] = "blazeface"
    task: ClassVar[str] = "face_detection"
    grids: tuple[tuple[int, int], ...]
    scale: float
    score_threshold: float
    nms_iou: float


@dataclass(frozen=True)
class RetinaFaceDecoder:
    """Priors per feature map (min sizes per stride) with the training code's variances."""

    kind: ClassVar[str] = "retinaface"
    task: ClassVar[str] = "face_detection"
    min_sizes: tuple[tuple[int, ...], ...]
    steps: tuple[int, ...]
    variances: tuple[float, float]
    score_threshold: float
    nms_iou: float


@dataclass(frozen=True)
class YoloxDecoder:
    """Grid cells per stride; score = objectness x class."""

    kind: ClassVar[str] = "yolox"
    task: ClassVar[str] = "object_detection"
    strides: tuple[int, ...]


@dataclass(frozen=True)
class NanoDetDecoder:
    """GFL heads: outputs matched by shape; box sides as distributions over reg_max + 1 bins."""

    kind: ClassVar[str] = "nanodet"
    task: ClassVar[str] = "object_detection"
    strides: tuple[int, ...]
    reg_max: int


DecoderConfig = BlazeFaceDecoder | RetinaFaceDecoder | YoloxDecoder | NanoDetDecoder
DECODER_KINDS: dict[str, type] = {cls.kind: cls for cls in (BlazeFaceDecoder, RetinaFaceDecoder, YoloxDecoder,
                                                             NanoDetDecoder)}


def _frozen(value: Any) -> Any:
    """TOML arrays as tuples (nested too), so configs are hashable and immutable."""
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value


def _check_type(value: Any, annotation: str, field_name: str) -> Any:
    if annotation in ("float",):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DecoderConfigError(f"decoder.{field_name} must be a number, got {value!r}")
        return float(value)
    if annotation in ("int",):
        if isinstance(value, bool) or not isinstance(value, int):
            raise DecoderConfigError(f"decoder.{field_name} must be a whole number, got {value!r}")
        return value
    if not isinstance(value, tuple) or not value:
        raise DecoderConfigError(f"decoder.{field_name} must be a non-empty list, got {value!r}")
    numbers = [v for item in value for v in (item if isinstance(item, tuple) else (item,))]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
        raise DecoderConfigError(f"decoder.{field_name} must hold numbers, got {value!r}")
    return value


def parse_decoder(raw: dict, task: str) -> DecoderConfig:
    """A catalog `decoder` table as its typed config. Raises DecoderConfigError naming the field."""
    kind = raw.get("kind")
    if kind not in DECODER_KINDS:
        raise DecoderConfigError(f"decoder.kind = {kind!r}, expected one of {tuple(DECODER_KINDS)}")
    cls = DECODER_KINDS[kind]
    if cls.task != task:
        raise DecoderConfigError(f"decoder.kind = {kind!r} decodes {cls.task}, not {task}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known) - {"kind"})
    if unknown:
        raise DecoderConfigError(f"decoder has unknown field(s) {', '.join(unknown)} for kind {kind!r}; "
                                 f"its fields are {', '.join(known)}")
    values = {}
    for name, spec in known.items():
        if name not in raw:
            if spec.default is MISSING:
                raise DecoderConfigError(f"decoder.{name} is missing (kind {kind!r})")
            continue
        values[name] = _check_type(_frozen(raw[name]), str(spec.type), name)
    return cls(**values)
