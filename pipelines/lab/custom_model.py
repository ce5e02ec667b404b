"""A person's own classifier (.onnx or .tflite): checked, measured, run on their photo, and for ONNX its
fp16 / int8 dynamic / int8 static variants derived with the catalog's recipes.

Everything lives in a work folder that belongs to one session; the caller removes it. Nothing is added to
the shared catalog.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from models import derive
from models.backends import Backend, BackendError, backend_class
from models.catalog import InputContract, ModelCard, OutputContract, Recipe, Source
from models.graph_stats import GraphStats, GraphStatsError, LayerTypeStats, graph_stats
from models.hub import LoadedModel
from models.store import ResolvedFile
from pipelines.common.calibration import calibration_inputs, calibration_photos
from pipelines.common.ops import agreement
from pipelines.common.photos import Photo, read_photo
from pipelines.common.preprocess import to_input_tensor
from pipelines.common.timing import StageLatency, time_variant
from pipelines.vision.classification import Classification, Classifier

MAX_MODEL_BYTES = 100 * 1024 * 1024
MAX_LABELS_BYTES = 2 * 1024 * 1024
RUNTIMES = {".onnx": "onnx", ".tflite": "tflite"}
SCALINGS = {
    "(x - 127.5) / 127.5  (-1..1)": ((127.5,) * 3, (127.5,) * 3),
    "(x - 128) / 128  (TF quantized MobileNets)": ((128.0,) * 3, (128.0,) * 3),
    "x / 255  (0..1)": ((0.0,) * 3, (255.0,) * 3),
    "ImageNet mean / std on 0..1 (torchvision)": ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),
    "x  (0..255, no scaling)": ((0.0,) * 3, (1.0,) * 3),
}
RESIZES = {"shorter side, centre crop 87.5 %": ("shorter_side_center_crop", 0.875), "whole photo stretched": ("stretch", 1.0)}
OUTPUT_KINDS = ("auto", "probabilities", "logits")


class CustomModelError(ValueError):
    """The uploaded model cannot be used as asked; the message names what is wrong."""


@dataclass(frozen=True)
class Form:
    """What the person declares about their model's input and output."""

    height: int = 224
    width: int = 224
    channels: str = "RGB"
    scaling: str = next(iter(SCALINGS))
    resize: str = next(iter(RESIZES))
    output_kind: str = "auto"


@dataclass(frozen=True)
class CustomModel:
    model: LoadedModel
    labels: tuple[str, ...]
    stats: GraphStats
    notes: tuple[str, ...]

    @property
    def card(self) -> ModelCard:
        return self.model.card

    @property
    def derivable(self) -> bool:
        """Variants are derived from an ONNX file with fp32 weights: from int8 ones they would quantize twice."""
        return self.card.runtime == "onnx" and {kind for kind, _ in self.stats.weight_types} <= {"fp32"}


@dataclass(frozen=True)
class DerivedVariant:
    kind: str
    path: Path | None  # None when the derivation failed
    size_mb: float = 0.0
    latency: StageLatency | None = None  # inference, warm runs; None when the derivation failed
    agreement_pct: float = 0.0  # same top-1 as the original on the calibration photos and the person's photo
    cosine: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class CustomRun:
    custom: CustomModel
    result: Classification
    latency: StageLatency  # inference, warm runs
    threads: int
    derived: tuple[DerivedVariant, ...] = field(default=())


def without_paths(exc: Exception, local: Path) -> str:
    """A runtime's own error text for the person: the server's paths left out, the first line only."""
    text = str(exc).replace(str(local), "your model").replace(str(local.parent), "")
    text = re.sub(r"(?:/[\w.\-]+)+", "", text).splitlines()[0] if text.strip() else type(exc).__name__
    return text.strip()[:300]


def _image_layout(shape: tuple, form: Form, name: str) -> tuple[str, int, int, list[str]]:
    """NCHW or NHWC from where the 3 channels are; the input size from the model where it is fixed."""
    if len(shape) != 4:
        raise CustomModelError(f"the input {name!r} has shape {list(shape)}: a photo needs [1, 3, H, W] or [1, H, W, 3]")

    def fixed(d) -> bool:
        return isinstance(d, (int, np.integer)) and d > 0

    if shape[1] == 3:
        layout, h, w = "NCHW", shape[2], shape[3]
    elif shape[3] == 3:
        layout, h, w = "NHWC", shape[1], shape[2]
    else:
        raise CustomModelError(f"the input {name!r} has shape {list(shape)}: no dimension of 3 colour channels")
    if fixed(shape[0]) and shape[0] != 1:
        raise CustomModelError(f"the input {name!r} has a fixed batch of {shape[0]}; this app feeds one photo")
    notes = []
    if fixed(h) and fixed(w):
        if (h, w) != (form.height, form.width):
            notes.append(f"the model's input is fixed at {h}x{w}; the form's {form.height}x{form.width} was not used")
        return layout, int(h), int(w), notes
    return layout, form.height, form.width, [f"the input size is open in the model; {form.height}x{form.width} from the form"]


def _class_count(shape: tuple, name: str) -> int:
    """A classifier gives one score per class: [1, N], [N] or [1, N, 1, 1]. A detector's [1, 3549, 85] or a
    segmenter's map has several values per place, which top-5 class names would make nonsense of."""
    dims = list(shape[1:]) if len(shape) > 1 else list(shape)
    if dims and all(isinstance(d, (int, np.integer)) and d > 0 for d in dims) and sum(d > 1 for d in dims) == 1:
        return int(np.prod(dims))
    raise CustomModelError(f"the output {name!r} has shape {list(shape)}: not one score per class (an image "
                           f"classifier's [1, N]); this tab reads classifiers, not detectors or segmenters")


def _read_labels(labels_path: Path | None, outputs: int) -> tuple[tuple[str, ...], bool, list[str]]:
    if labels_path is None:
        return tuple(f"class {i}" for i in range(outputs)), False, ["no labels file: classes are numbered"]
    if labels_path.stat().st_size > MAX_LABELS_BYTES:
        raise CustomModelError(f"the labels file is over {MAX_LABELS_BYTES // 2**20} MB")
    try:
        lines = [line.strip() for line in labels_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise CustomModelError("the labels file is not UTF-8 text (one label per line)") from None
    if len(lines) == outputs:
        background = lines[0].lower() == "background"
        return tuple(lines[1:] if background else lines), background, []
    if len(lines) == outputs - 1:
        return tuple(lines), True, ["the model has one more output than labels: output 0 taken as 'background'"]
    if len(lines) == outputs + 1 and lines[0].lower() == "background":
        return tuple(lines[1:]), False, ["the labels file starts with 'background', which the model has no output for"]
    raise CustomModelError(
        f"the labels file has {len(lines)} labels but the model gives {outputs} scores; they must match "
        f"(or the model may have one extra 'background' output first)"
    )


def load_custom_model(model_path: Path, labels_path: Path | None, form: Form, workdir: Path, threads: int = 1) -> CustomModel:
    """Copy the upload into the session's work folder, load it and check it can be fed a photo."""
    runtime = RUNTIMES.get(model_path.suffix.lower())
    if runtime is None:
        raise CustomModelError(f"{model_path.name}: upload an .onnx or a .tflite file")
    size = model_path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise CustomModelError(f"the model is {size / 2**20:.0f} MB; the limit is {MAX_MODEL_BYTES // 2**20} MB")
    if form.channels not in ("RGB", "BGR") or form.scaling not in SCALINGS or form.resize not in RESIZES \
            or form.output_kind not in OUTPUT_KINDS or not (8 <= form.height <= 2048 and 8 <= form.width <= 2048):
        raise CustomModelError("the input form has a value outside its choices (size 8..2048)")
    workdir.mkdir(parents=True, exist_ok=True)
    local = workdir / f"original{model_path.suffix.lower()}"
    shutil.copyfile(model_path, local)
    try:
        backend = backend_class(runtime)(local, threads)
    except BackendError as exc:
        raise CustomModelError(f"this is not a model {runtime} can load ({without_paths(exc, local)})") from None
    if len(backend.inputs) != 1:
        names = ", ".join(i.name for i in backend.inputs)
        raise CustomModelError(f"the model has {len(backend.inputs)} inputs ({names}); this form feeds one photo")
    spec = backend.inputs[0]
    layout, height, width, notes = _image_layout(spec.shape, form, spec.name)
    out_shape = backend.outputs[0].shape
    if len(backend.outputs) > 1:
        notes.append(f"the model has {len(backend.outputs)} outputs; the first ({backend.outputs[0].name}) is used")
    outputs = _class_count(out_shape, backend.outputs[0].name)
    labels, background, label_notes = _read_labels(labels_path, outputs)
    mean, std = SCALINGS[form.scaling]
    resize, crop = RESIZES[form.resize]
    contract = InputContract(height, width, layout, form.channels, mean, std, resize, crop)
    sha = hashlib.sha256(local.read_bytes()).hexdigest()
    card = ModelCard(
        name=f"upload.{runtime}", task="classification", arch="uploaded", display=model_path.name,
        precision="fp32", variant="as uploaded", runtime=runtime, file=local.name, sha256=sha, bytes=size,
        labels="(uploaded)", license="the uploader's", input=contract,
        output=OutputContract(kind="probabilities" if form.output_kind == "probabilities" else "logits",
                              classes=outputs, background_class=background),
        sources=(Source(what="uploaded in this session"),),
    )
    model = LoadedModel(card, ResolvedFile(card, local, "upload", 0.0, sha), backend)
    probe = Classifier(model, labels)
    try:
        raw = probe.infer(probe.preprocess(calibration_photos("skimage_samples")[0]))
    except BackendError as exc:
        raise CustomModelError(f"the model fails on a {height}x{width} {layout} input ({without_paths(exc, local)})") from None
    if form.output_kind == "auto":
        scores = raw.reshape(-1)
        # uint8 softmax outputs sum to 0.9..1.0 after quantization; logits are rarely all >= 0 near 1
        already = bool(np.all(scores >= -1e-6) and abs(float(scores.sum()) - 1.0) < 0.15)
        kind = "probabilities" if already else "logits"
        notes.append(f"output read as {kind} (auto: {'they sum to 1' if already else 'they do not sum to 1'})")
        card = _with_output_kind(card, kind)
        model = LoadedModel(card, model.file, backend)
    try:
        stats = graph_stats(local, runtime, (1, 3, height, width) if layout == "NCHW" else (1, height, width, 3))
    except GraphStatsError as exc:
        raise CustomModelError(f"the graph could not be measured: {exc}") from None
    custom = CustomModel(model, labels, stats, tuple(notes + label_notes))
    if runtime == "onnx" and not custom.derivable:
        custom = replace(custom, notes=custom.notes + (
            f"its weights are stored as {stats.stored_as}: variants are derived from fp32 weights only, so none is "
            f"made from this file",))
    return custom


def _with_output_kind(card: ModelCard, kind: str) -> ModelCard:
    return replace(card, output=replace(card.output, kind=kind))


TIMED_RUNS = 10  # warm runs behind each latency of an upload and its variants


def _inference_latency(classifier: Classifier, photo: Photo, threads: int) -> StageLatency:
    report = time_variant(lambda: classifier(photo.image).timings, classifier.card.name, threads, runs=TIMED_RUNS,
                          warmup=2)
    return report.stage("inference")


def run_custom(custom: CustomModel, photo: Photo, threads: int = 1) -> CustomRun:
    classifier = Classifier(custom.model, custom.labels)
    return CustomRun(custom, classifier(photo.image), _inference_latency(classifier, photo, threads), threads)


DERIVED_KINDS = ("fp16", "int8_dynamic", "int8_static")


def derive_variants(custom: CustomModel, photo: Photo, threads: int = 1,
                    stage: Callable[[str], None] = lambda what: None) -> tuple[DerivedVariant, ...]:
    """fp16, int8 dynamic and int8 static of an uploaded ONNX model, each compared with the original;
    `stage` is told before each is made."""
    if not custom.derivable:
        return ()
    original = Classifier(custom.model, custom.labels)
    images = calibration_photos("skimage_samples") + [photo.image]
    reference = np.stack([original.run(image)[0] for image in images])
    workdir = custom.model.file.path.parent
    variants = []
    for kind in DERIVED_KINDS:
        stage(f"deriving and comparing its {kind.replace('_', ' ')} variant"
              + (" (calibrating on the sample photos, correcting biases)" if kind == "int8_static" else ""))
        target = workdir / f"{Path(custom.card.display).stem}.{kind}.onnx"
        recipe_card = _with_recipe(custom.card, kind)
        try:
            derive.derive_recipe(recipe_card.recipe, custom.model.file.path, target, calibration_inputs(recipe_card))
            backend: Backend = backend_class("onnx")(target, threads)
        except Exception as exc:  # quantizers raise many types; the person sees which step failed and why
            target.unlink(missing_ok=True)
            variants.append(DerivedVariant(kind, None, error=f"{kind} derivation failed: "
                                                             f"{without_paths(exc, custom.model.file.path)}"))
            continue
        model = LoadedModel(recipe_card, ResolvedFile(recipe_card, target, "derived", 0.0, ""), backend)
        classifier = Classifier(model, custom.labels)
        agreed = agreement(np.stack([classifier.run(image)[0] for image in images]), reference)
        latency = _inference_latency(classifier, photo, threads)
        variants.append(DerivedVariant(kind, target, target.stat().st_size / 1e6, latency,
                                       100 * agreed.same_top1, agreed.mean_cosine))
    return tuple(variants)


def _with_recipe(card: ModelCard, kind: str) -> ModelCard:
    return replace(card, name=f"upload.{kind}", precision="fp16" if kind == "fp16" else "int8",
                   variant=kind.replace("_", " "), derived_from=card.name,
                   # biases corrected as the catalog's EfficientNet-Lite0 file is: on 200 held-out photos an uploaded
                   # EfficientNet-Lite0 then keeps fp32's top-1 on 89.0 % (82.5 without), SqueezeNet Places365 84.0
                   # (81.5), for 1 s more
                   recipe=Recipe(kind, "skimage_samples", bias_correct=True) if kind == "int8_static" else Recipe(kind))



@dataclass(frozen=True)
class UploadReport:
    """What the Your-model tab shows about an upload, as plain data: a worker process hands it over as JSON."""

    display: str
    runtime: str
    bytes: int
    input: str  # the input contract used, in words
    outputs: int
    output_kind: str
    background: bool
    stats: GraphStats
    latency: StageLatency  # inference, warm runs
    threads: int
    notes: tuple[str, ...]
    top: tuple[tuple[str, float], ...]
    derived: tuple[DerivedVariant, ...]
    # the int8 static variant against the upload, tensor by tensor (models/sensitivity.py)
    layers: tuple[tuple, ...] = ()  # most suspect first: tensor, op, depth, crushed %, own dB, against float dB
    layer_depths: tuple[tuple[float, float, float], ...] = ()  # every tensor: depth, own dB, against float dB
    layers_output_db: float | None = None
    layers_note: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> UploadReport:
        raw = json.loads(text)
        stats = raw["stats"]
        raw["stats"] = GraphStats(stats["file_bytes"], stats["params"], stats["macs"],
                                  tuple(LayerTypeStats(**row) for row in stats["by_type"]),
                                  tuple((kind, int(n)) for kind, n in stats["weight_types"]))
        raw["notes"] = tuple(raw["notes"])
        raw["top"] = tuple((label, float(score)) for label, score in raw["top"])
        raw["latency"] = StageLatency(**raw["latency"])
        raw["derived"] = tuple(DerivedVariant(**{**d, "path": Path(d["path"]) if d["path"] else None,
                                                 "latency": StageLatency(**d["latency"]) if d["latency"] else None})
                               for d in raw["derived"])
        raw["layers"] = tuple(tuple(row) for row in raw["layers"])
        raw["layer_depths"] = tuple(tuple(row) for row in raw["layer_depths"])
        return cls(**raw)


REPORT_INPUTS = 4  # sample photos (and the person's) the per-layer report runs on


def _layers(custom: CustomModel, derived: tuple[DerivedVariant, ...], photo: Photo) -> dict:
    """The per-layer report of the upload's int8 static variant, as plain data for the report."""
    from models.sensitivity import layer_report
    from pipelines.lab.quantization import split_sentence

    static = next((d for d in derived if d.kind == "int8_static" and d.path), None)
    if static is None:
        return {"layers_note": "no int8 static variant to report on" if custom.derivable else ""}
    images = calibration_photos("skimage_samples")[:REPORT_INPUTS] + [photo.image]
    try:
        report = layer_report(custom.model.file.path, static.path,
                              [to_input_tensor(image, custom.card.input) for image in images])
    except Exception as exc:  # the report is extra: the variants stand without it
        return {"layers_note": f"the per-layer report could not be made: {type(exc).__name__}: "
                               f"{without_paths(exc, custom.model.file.path)}"}
    rows = tuple((t.tensor, t.op_type, round(t.depth, 3), None if t.crushed is None else round(100 * t.crushed, 1),
                  round(t.own_db, 2), round(t.accumulated_db, 2)) for t in report.ranked()[:15])
    depths = tuple((round(t.depth, 4), round(min(t.own_db, 80.0), 2), round(min(t.accumulated_db, 80.0), 2))
                   for t in report.tensors)
    return {"layers": rows, "layer_depths": depths, "layers_output_db": round(report.output_db, 2),
            "layers_note": f"measured on {report.inputs} photos (sample photos and yours); "
                           f"{split_sentence(report)}"}


def analyse_upload(model_path: Path, labels_path: Path | None, photo_path: Path, form: Form, workdir: Path,
                   threads: int = 1, progress: Callable[[int, int, str], None] = lambda done, total, what: None
                   ) -> UploadReport:
    """Everything the tab does with an upload: check and load it, run it on the photo, derive its variants.
    `progress(steps done, steps in all, the step starting)` is told as each step starts."""
    steps = itertools.count()
    total = 2 + (len(DERIVED_KINDS) + 1 if RUNTIMES.get(model_path.suffix.lower()) == "onnx" else 0)

    def stage(what: str) -> None:
        progress(next(steps), total, what)

    stage("reading your model and measuring its graph")
    photo = read_photo(photo_path)
    custom = load_custom_model(model_path, labels_path, form, workdir, threads)
    if not custom.derivable:
        total = 2  # known once the graph is read
    stage("running it on your photo")
    run = run_custom(custom, photo, threads)
    derived = derive_variants(custom, photo, threads, stage)
    if derived:
        stage("comparing the int8 static variant with yours, layer by layer")
    card = custom.card
    return UploadReport(card.display, card.runtime, card.bytes, card.input.describe(), card.output.classes,
                        card.output.kind, card.output.background_class, custom.stats, run.latency, run.threads,
                        custom.notes,
                        tuple((p.label, p.score) for p in run.result.top), derived,
                        **_layers(custom, derived, photo))
