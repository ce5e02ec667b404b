"""The model catalog: one card per weight variant, read from data/catalog.toml into frozen dataclasses."""

from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from models.decoders import DecoderConfig, DecoderConfigError, parse_decoder

DATA_DIR = Path(__file__).resolve().parent / "data"
LABELS_DIR = DATA_DIR / "labels"

TASKS = ("classification", "scene", "face_detection", "face_embedding", "object_detection")
LABELED_TASKS = ("classification", "scene", "object_detection")
RESIZES = ("shorter_side_center_crop", "stretch", "letterbox", "pyramid", "aligned")
OUTPUT_KINDS = ("probabilities", "logits", "embedding", "detections")
RUNTIMES = ("onnx", "tflite")
PRECISIONS = ("fp32", "fp16", "int8")
RECIPE_KINDS = ("fp16", "int8_static", "int8_dynamic")


class CatalogError(ValueError):
    """The catalog data is malformed: names the card and the field."""


class UnknownCardError(KeyError):
    def __init__(self, name: str, known: tuple[str, ...]):
        close = [k for k in known if name.split(".")[0] in k] or list(known)
        super().__init__(
            f"unknown model card {name!r}. Known cards: {', '.join(close)}. "
            "Card names are 'arch.tag' as listed in models/data/catalog.toml."
        )
        self.name = name

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return self.args[0]


@dataclass(frozen=True)
class InputContract:
    """What the model's input tensor holds. Real value per channel = (pixel - mean) / std.

    resize: "shorter_side_center_crop", "stretch" (whole photo to the size), "letterbox" (whole photo, aspect
    kept, padded), "pyramid" (any size: MTCNN's P-Net), "aligned" (a face aligned to the 5-point template).
    height = width = 0: any size. transposed: height and width swapped in the tensor (MTCNN, Caffe lineage).
    """

    height: int
    width: int
    layout: str  # "NHWC" or "NCHW"
    channels: str  # "RGB" or "BGR"
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: str
    crop_fraction: float = 1.0
    transposed: bool = False
    align: str = "center"  # letterbox: "center" or "top_left"
    pad: float | None = None  # letterbox padding as a pixel value; None: the mean (0 after scaling)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (1, self.height, self.width, 3) if self.layout == "NHWC" else (1, 3, self.height, self.width)

    def describe(self) -> str:
        def triple(values: tuple[float, ...]) -> str:
            return f"{values[0]:g}" if len(set(values)) == 1 else "[" + ", ".join(f"{v:g}" for v in values) + "]"

        shape = list(self.shape)
        if self.resize == "stretch":
            resize = f"whole photo resized to {self.height}x{self.width}"
        elif self.resize == "letterbox":
            pad = "the mean" if self.pad is None else f"{self.pad:g}"
            where = "top-left corner" if self.align == "top_left" else "centre"
            resize = f"whole photo fitted into {self.height}x{self.width} at the {where}, aspect kept, padded with {pad}"
        elif self.resize == "pyramid":
            resize = "any size: an image pyramid (scale factor 0.709)"
        elif self.resize == "aligned":
            resize = f"a face aligned to the 5-point template at {self.height}x{self.width}"
        else:
            resize = (
                f"shorter side resized to {round(self.height / self.crop_fraction)}, "
                f"centre crop {self.height}x{self.width}"
            )
        shape = [d if d else "any" for d in shape]
        transposed = ", transposed (width and height swapped)" if self.transposed else ""
        return (f"{self.layout} {shape} {self.channels}{transposed}, (x - {triple(self.mean)}) / {triple(self.std)}; "
                f"{resize}")


@dataclass(frozen=True)
class OutputContract:
    kind: str  # "probabilities", "logits", "embedding" or "detections"
    classes: int  # classes, or the embedding's dimensions
    background_class: bool = False  # index 0 is ImageNet's 'background'


@dataclass(frozen=True)
class Source:
    what: str
    url: str | None = None


@dataclass(frozen=True)
class PhoneLatency:
    """One published on-device figure (never a measurement made here)."""

    model: str
    precision: str
    runtime: str
    device: str
    compute_unit: str
    latency_ms: str  # some published figures are ranges, e.g. "70-90"
    source: str
    note: str
    match: str  # how the published model relates to the card's file


@dataclass(frozen=True)
class Recipe:
    kind: str  # one of RECIPE_KINDS
    calibration: str | None = None  # named photo set, int8_static only
    keep_float: tuple[str, ...] = ()  # int8_static: activation tensors left in float (chosen by measurement)
    equalize: bool = False  # int8_static: activation ranges equalized across channels before quantizing
    bias_correct: bool = False  # int8_static: biases take back the mean error of the weights' rounding
    fine_tune: str | None = None  # int8_static: named photo set its weights then learn on (models/fine_tune.py)

    def as_dict(self) -> dict:
        found = {k: v for k, v in (("kind", self.kind), ("calibration", self.calibration)) if v is not None}
        return (found | ({"keep_float": list(self.keep_float)} if self.keep_float else {})
                | ({"equalize": True} if self.equalize else {}) | ({"bias_correct": True} if self.bias_correct else {})
                | ({"fine_tune": self.fine_tune} if self.fine_tune else {}))

    def describe(self) -> str:
        """In words, for a card: what was done to the parent's file."""
        words = {"fp16": "fp16 weights and activations, fp32 inputs and outputs",
                 "int8_dynamic": "int8 weights, activations quantized per run",
                 "int8_static": f"QDQ int8, per-channel weights, uint8 activations calibrated on {self.calibration}"}
        kept = f"; {len(self.keep_float)} activation tensor(s) kept in float" if self.keep_float else ""
        equalized = "; activation ranges equalized across channels first" if self.equalize else ""
        corrected = "; biases corrected for the weights' rounding" if self.bias_correct else ""
        tuned = f"; weights fine-tuned to fp32's outputs on {self.fine_tune}" if self.fine_tune else ""
        return words.get(self.kind, self.kind) + kept + equalized + corrected + tuned


@dataclass(frozen=True)
class RebuildSource:
    """A public file a card's model file is rebuilt from. Found, in order: at `file` in a model folder or
    the cache; as `member` of the installed package `package`; or downloaded from `url` (pinned). It is used
    only when its sha256 matches."""

    file: str  # where it lives in a model folder or the cache, e.g. "sources/scene/x.params"
    sha256: str
    url: str | None = None
    package: str | None = None  # an installed distribution (pip) that carries it
    member: str | None = None  # its path inside that distribution

    @property
    def name(self) -> str:
        return self.file.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Rebuild:
    """How a card's file is rebuilt from public weights when the file itself has no public download."""

    recipe: str
    sources: tuple[RebuildSource, ...]


@dataclass(frozen=True)
class ModelCard:
    name: str
    task: str
    arch: str
    display: str
    precision: str
    variant: str
    runtime: str
    file: str
    sha256: str | None  # None for derived cards: their file is made here
    bytes: int | None
    labels: str | None  # None for face models
    license: str
    input: InputContract
    output: OutputContract
    sources: tuple[Source, ...]
    phone_latency: tuple[PhoneLatency, ...] = ()
    io_labels: str | None = None
    derived_from: str | None = None
    recipe: Recipe | None = None
    stage: str | None = None  # MTCNN: "pnet", "rnet" or "onet"
    decoder: DecoderConfig | None = None  # detection cards with one network: how its outputs are decoded
    rebuild: Rebuild | None = None  # no public download of the file: rebuilt here from public weights
    open_batch: bool = False  # the file is fixed at batch 1; the backend opens it (all faces in one call)

    @property
    def short_variant(self) -> str:
        """The variant as a table column shows it: "fp32", "int8 static", "int8 QAT" (the words before any
        parenthesis)."""
        return self.variant.split(" (")[0]

    @property
    def is_derived(self) -> bool:
        return self.derived_from is not None


@dataclass(frozen=True)
class Defaults:
    """What each task offers first, in one place: card names (face detection: a detector's display name).
    `album` overrides some of them for albums, where every photo goes through every model."""

    photo: tuple[tuple[str, str], ...]  # (task, name)
    album: tuple[tuple[str, str], ...] = ()

    def of(self, task: str, purpose: str = "photo") -> str:
        chosen = dict(self.photo) | (dict(self.album) if purpose == "album" else {})
        return chosen[task]


@dataclass(frozen=True)
class Catalog:
    cards: tuple[ModelCard, ...]
    defaults: Defaults | None = None
    _by_name: dict[str, ModelCard] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {c.name: c for c in self.cards})

    def __getitem__(self, name: str) -> ModelCard:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownCardError(name, tuple(self._by_name)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self):
        return iter(self.cards)

    def for_task(self, task: str) -> tuple[ModelCard, ...]:
        return tuple(c for c in self.cards if c.task == task)

    def displays(self, task: str) -> tuple[str, ...]:
        """Model names offered for a task, in catalog order."""
        return tuple(dict.fromkeys(c.display for c in self.for_task(task)))

    def variants(self, task: str, display: str) -> tuple[ModelCard, ...]:
        return tuple(c for c in self.for_task(task) if c.display == display)

    def default(self, task: str, purpose: str = "photo") -> str:
        """The default card name of a task (face detection: the detector's display name)."""
        if self.defaults is None:
            cards = self.for_task(task)
            return cards[0].display if task == "face_detection" else cards[0].name
        return self.defaults.of(task, purpose)


@cache
def read_labels(filename: str) -> tuple[str, ...]:
    lines = (LABELS_DIR / filename).read_text(encoding="utf-8").splitlines()
    return tuple(line for line in lines if line.strip())


def class_names(card: ModelCard) -> tuple[str, ...]:
    """Names of the model's real classes (ImageNet's 'background' line dropped), in output order.

    Places365 lines are '/k/kennel/outdoor 213': shown as 'kennel (outdoor)'.
    """
    labels = read_labels(card.labels)
    if labels and labels[0] == "background":
        labels = labels[1:]
    return tuple(_places_name(line) if line.startswith("/") else line for line in labels)


def _places_name(line: str) -> str:
    name, *kind = line.split(" ")[0][3:].replace("_", " ").split("/")
    return name + (f" ({', '.join(kind)})" if kind else "")


def _published_latencies(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _require(entry: dict, key: str, name: str):
    if key not in entry:
        raise CatalogError(f"card {name!r}: missing field {key!r}")
    return entry[key]


def _one_of(value: str, allowed: tuple[str, ...], name: str, key: str) -> str:
    if value not in allowed:
        raise CatalogError(f"card {name!r}: {key} = {value!r}, expected one of {allowed}")
    return value


def _input(raw: dict, name: str) -> InputContract:
    try:
        contract = InputContract(
            height=int(raw["height"]),
            width=int(raw["width"]),
            layout=_one_of(raw["layout"], ("NHWC", "NCHW"), name, "input.layout"),
            channels=_one_of(raw["channels"], ("RGB", "BGR"), name, "input.channels"),
            mean=tuple(float(v) for v in raw["mean"]),
            std=tuple(float(v) for v in raw["std"]),
            resize=_one_of(raw["resize"], RESIZES, name, "input.resize"),
            crop_fraction=float(raw.get("crop_fraction", 1.0)),
            transposed=bool(raw.get("transposed", False)),
            align=_one_of(raw.get("align", "center"), ("center", "top_left"), name, "input.align"),
            pad=float(raw["pad"]) if "pad" in raw else None,
        )
    except KeyError as exc:
        raise CatalogError(f"card {name!r}: input is missing {exc.args[0]!r}") from None
    if len(contract.mean) != 3 or len(contract.std) != 3 or 0.0 in contract.std:
        raise CatalogError(f"card {name!r}: input mean and std need 3 values each, std non-zero")
    if not 0.0 < contract.crop_fraction <= 1.0:
        raise CatalogError(f"card {name!r}: input.crop_fraction must be in (0, 1]")
    return contract


def _rebuild(entry: dict, name: str) -> Rebuild | None:
    raw = entry.get("rebuild")
    if raw is None:
        return None
    sources = []
    for source in _require(raw, "sources", name):
        unknown = set(source) - {"file", "sha256", "url", "package", "member"}
        if unknown:
            raise CatalogError(f"card {name!r}: rebuild source has unknown field(s) {', '.join(sorted(unknown))}")
        if "file" not in source or len(source.get("sha256", "")) != 64:
            raise CatalogError(f"card {name!r}: each rebuild source needs a file and a 64-digit sha256")
        if ("package" in source) != ("member" in source):
            raise CatalogError(f"card {name!r}: a rebuild source's package and member go together")
        sources.append(RebuildSource(**source))
    from models.rebuild import recipes  # the names only; recipes import their libraries when they run

    recipe = _require(raw, "recipe", name)
    if recipe not in recipes():
        raise CatalogError(f"card {name!r}: rebuild.recipe = {recipe!r}, expected one of {tuple(recipes())}")
    return Rebuild(recipe, tuple(sources))


def _decoder(entry: dict, task: str, name: str) -> DecoderConfig | None:
    if "decoder" not in entry:
        if task == "object_detection" or (task == "face_detection" and "stage" not in entry):
            raise CatalogError(f"card {name!r}: a {task} card needs a decoder table (or an MTCNN stage)")
        return None
    try:
        return parse_decoder(entry["decoder"], task)
    except DecoderConfigError as exc:
        raise CatalogError(f"card {name!r}: {exc}") from None


def _phone_latency(selectors: list[dict], rows: list[dict[str, str]], name: str) -> tuple[PhoneLatency, ...]:
    found = []
    for sel in selectors:
        match = _require(sel, "match", name)
        hits = [
            r for r in rows
            if r["model"] == sel["model"] and ("precision" not in sel or r["precision"] == sel["precision"])
        ]
        if not hits:
            raise CatalogError(f"card {name!r}: no published latency row for {sel}")
        found += [
            PhoneLatency(
                model=r["model"], precision=r["precision"], runtime=r["runtime"], device=r["device"],
                compute_unit=r["compute_unit"], latency_ms=r["latency_ms"], source=r["source"],
                note=r["note"], match=match,
            )
            for r in hits
        ]
    return tuple(found)


def _derived_card(entry: dict, parent: ModelCard, rows: list[dict[str, str]]) -> ModelCard:
    name = entry["name"]
    if parent.runtime != "onnx" or parent.precision != "fp32" or parent.is_derived:
        raise CatalogError(f"card {name!r}: only original fp32 ONNX cards can be derived from")
    raw_recipe = _require(entry, "recipe", name)
    recipe = Recipe(
        kind=_one_of(raw_recipe.get("kind", ""), RECIPE_KINDS, name, "recipe.kind"),
        calibration=raw_recipe.get("calibration"),
        keep_float=tuple(raw_recipe.get("keep_float", ())),
        equalize=raw_recipe.get("equalize", False),
        bias_correct=raw_recipe.get("bias_correct", False),
        fine_tune=raw_recipe.get("fine_tune"),
    )
    if (recipe.kind == "int8_static") != (recipe.calibration is not None):
        raise CatalogError(f"card {name!r}: recipe.calibration is required for int8_static and only there")
    if recipe.keep_float and recipe.kind != "int8_static":
        raise CatalogError(f"card {name!r}: recipe.keep_float is for int8_static only")
    if recipe.fine_tune is not None and (not isinstance(recipe.fine_tune, str) or recipe.kind != "int8_static"):
        raise CatalogError(f"card {name!r}: recipe.fine_tune names a photo set, for int8_static only")
    for option in ("equalize", "bias_correct"):
        value = getattr(recipe, option)
        if not isinstance(value, bool) or (value and recipe.kind != "int8_static"):
            raise CatalogError(f"card {name!r}: recipe.{option} is true or false, and for int8_static only")
    return ModelCard(
        name=name, task=parent.task, arch=parent.arch, display=parent.display,
        precision=_one_of(_require(entry, "precision", name), PRECISIONS, name, "precision"),
        variant=_require(entry, "variant", name), runtime=parent.runtime,
        file=f"derived/{name}.onnx", sha256=None, bytes=None, labels=parent.labels,
        license=parent.license, input=parent.input, output=parent.output,
        sources=(Source(what=f"derived here from {parent.name} ({recipe.describe()})"),),
        phone_latency=_phone_latency(entry.get("phone_latency", []), rows, name),
        io_labels=parent.io_labels, derived_from=parent.name, recipe=recipe, stage=parent.stage,
        decoder=parent.decoder, open_batch=parent.open_batch,
    )


def _card(entry: dict, rows: list[dict[str, str]]) -> ModelCard:
    name = _require(entry, "name", "?")
    output = _require(entry, "output", name)
    task = _one_of(_require(entry, "task", name), TASKS, name, "task")
    card = ModelCard(
        name=name,
        task=task,
        arch=_require(entry, "arch", name),
        display=_require(entry, "display", name),
        precision=_one_of(_require(entry, "precision", name), PRECISIONS, name, "precision"),
        variant=_require(entry, "variant", name),
        runtime=_one_of(_require(entry, "runtime", name), RUNTIMES, name, "runtime"),
        file=_require(entry, "file", name),
        sha256=_require(entry, "sha256", name).lower(),
        bytes=int(_require(entry, "bytes", name)),
        labels=_require(entry, "labels", name) if task in LABELED_TASKS else entry.get("labels"),
        license=_require(entry, "license", name),
        input=_input(_require(entry, "input", name), name),
        output=OutputContract(
            kind=_one_of(output.get("kind", ""), OUTPUT_KINDS, name, "output.kind"),
            classes=int(output.get("classes", 0)),
            background_class=bool(output.get("background_class", False)),
        ),
        sources=tuple(Source(**s) for s in _require(entry, "sources", name)),
        phone_latency=_phone_latency(entry.get("phone_latency", []), rows, name),
        io_labels=entry.get("io_labels"),
        stage=entry.get("stage"),
        decoder=_decoder(entry, task, name),
        rebuild=_rebuild(entry, name),
        open_batch=bool(entry.get("open_batch", False)),
    )
    if len(card.sha256) != 64:
        raise CatalogError(f"card {name!r}: sha256 must be 64 hex digits")
    if task in LABELED_TASKS:
        real_classes = card.output.classes - card.output.background_class
        if len(class_names(card)) != real_classes:
            raise CatalogError(
                f"card {name!r}: {card.labels} has {len(read_labels(card.labels))} labels for "
                f"{card.output.classes} outputs"
            )
    if card.stage not in (None, "pnet", "rnet", "onet"):
        raise CatalogError(f"card {name!r}: stage = {card.stage!r}, expected pnet, rnet or onet")
    return card


def _defaults(raw: dict, cards: dict[str, ModelCard]) -> Defaults | None:
    if not raw:
        return None
    album = raw.get("album", {})
    photo = {k: v for k, v in raw.items() if k != "album"}
    for purpose, table in (("defaults", photo), ("defaults.album", album)):
        for task, name in table.items():
            if task not in TASKS:
                raise CatalogError(f"{purpose}: {task!r} is not a task; expected one of {TASKS}")
            known = {c.display for c in cards.values() if c.task == task} if task == "face_detection" else \
                {c.name for c in cards.values() if c.task == task}
            if name not in known:
                raise CatalogError(f"{purpose}.{task} = {name!r} is not a {task} card of this catalog")
    missing = sorted({c.task for c in cards.values()} - set(photo))
    if missing:
        raise CatalogError(f"defaults: no default for {', '.join(missing)}")
    return Defaults(tuple(photo.items()), tuple(album.items()))


def load_catalog(path: Path = DATA_DIR / "catalog.toml", latency_csv: Path = DATA_DIR / "phone_latency.csv") -> Catalog:
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    entries = data.get("card", [])
    rows = _published_latencies(latency_csv)
    cards: dict[str, ModelCard] = {}
    for entry in entries:
        name = entry.get("name")
        if name in cards:
            raise CatalogError(f"card {name!r} is defined twice")
        if "derived_from" in entry:
            parent_name = entry["derived_from"]
            if parent_name not in cards:
                raise CatalogError(f"card {name!r}: derived_from {parent_name!r} must be defined above it")
            cards[name] = _derived_card(entry, cards[parent_name], rows)
        else:
            cards[name] = _card(entry, rows)
    return Catalog(tuple(cards.values()), _defaults(data.get("defaults", {}), cards))


@cache
def default_catalog() -> Catalog:
    return load_catalog()
