"""What each variant costs and what it loses: the Models tab's table and plot points, and one photo run
through every precision of a model."""

from __future__ import annotations

import re
from dataclasses import dataclass

from models.catalog import Catalog, ModelCard, PhoneLatency
from models.hub import ModelHub
from pipelines.common.photos import Photo
from pipelines.common.timing import StageLatency, time_variant
from pipelines.lab.records import CardEvaluation
from pipelines.vision.classification import Classification, Classifier

# each host axis: the evaluation's warm median it plots, and that median's p90
HOST_AXES = {"host, 1 thread (measured here)": ("latency_1t_ms", "latency_1t_p90_ms"),
             "host, 2 threads (measured here)": ("latency_2t_ms", "latency_2t_p90_ms")}


def published_ms(figure: PhoneLatency) -> float:
    """A published figure as one number: a range 'a-b' becomes its midpoint."""
    numbers = [float(n) for n in re.findall(r"\d+(?:\.\d+)?", figure.latency_ms)]
    if not numbers:
        raise ValueError(f"no number in the published latency {figure.latency_ms!r}")
    return sum(numbers[:2]) / len(numbers[:2])


# What a published precision tag means for a file of this precision. A float model run on an NPU in fp16 is
# still the float file; an int8 figure is for int8 activations and weights (w8a16 is not).
SAME_PRECISION = {"fp32": ("fp32", "float (fp16 on NPU)"), "fp16": ("fp16",), "int8": ("int8", "uint8", "w8a8")}
EXACT_MATCHES = ("this model", "same weights")


def published_for(card: ModelCard) -> list[PhoneLatency]:
    """The published phone figures that are this variant's own: the same file or the same weights, at the same
    precision. Figures of a related model or of another precision never stand in for it."""
    return [p for p in card.phone_latency if p.match.startswith(EXACT_MATCHES)
            and p.precision in SAME_PRECISION.get(card.precision, ())]


def phone_axes(catalog: Catalog, tasks: tuple[str, ...]) -> list[str]:
    """'phone: device, compute unit' for every pair some card of these tasks has a published figure for."""
    pairs = {(p.device, p.compute_unit) for card in catalog if card.task in tasks for p in published_for(card)}
    return [f"phone: {device}, {unit}" for device, unit in sorted(pairs)]


@dataclass(frozen=True)
class PlotPoint:
    card: str  # the card, or a face detector's name
    model: str
    variant: str  # short: "fp32", "int8 static", ...
    latency_ms: float
    score: float  # the task's figure (top-1 %, mAP@0.5, faces found %, balanced pair accuracy %)
    size_mb: float
    how: str  # where the latency comes from


def task_rows(catalog: Catalog, task: str) -> list[tuple[str, ModelCard | None, str, str]]:
    """(evaluation key, card if the row is one card, model, variant) of a task: face detectors are one row per
    detector (MTCNN is three files)."""
    if task == "face_detection":
        rows = []
        for display in catalog.displays(task):
            cards = catalog.variants(task, display)
            rows.append((display, cards[0] if len(cards) == 1 else None, display, cards[0].short_variant))
        return rows
    return [(c.name, c, c.display, c.short_variant) for c in catalog.for_task(task)]


def plot_points(catalog: Catalog, evaluations: dict[str, CardEvaluation], task: str, axis: str) -> tuple[list[PlotPoint], list[str]]:
    """Points of one task for an axis; and the models left out because that axis has no figure for them (a
    phone axis only carries a variant's own published figure: same file or weights, same precision)."""
    points, missing = [], []
    for key, card, model, variant in task_rows(catalog, task):
        result = evaluations.get(key)
        if result is None:
            missing.append(f"{key} (not evaluated yet)")
            continue
        if axis in HOST_AXES:
            latency, p90 = (getattr(result, field) for field in HOST_AXES[axis])
            how = f"measured on this host: median of {result.latency_runs} warm runs (p90 {p90:.2f} ms)"
        else:
            device, unit = axis.removeprefix("phone: ").rsplit(", ", 1)
            chosen = [p for p in published_for(card) if (p.device, p.compute_unit) == (device, unit)] if card else []
            if not chosen:
                missing.append(key)
                continue
            best = min(chosen, key=published_ms)
            latency = published_ms(best)
            how = f"published: {best.runtime}, {best.precision} ({best.match}); {best.source}"
        points.append(PlotPoint(key, model, variant, latency, result.score, result.size_mb, how))
    return points, missing


def pareto_front(points: list[PlotPoint]) -> list[PlotPoint]:
    """The points no other point beats on both latency (lower) and the task's figure (higher), by latency."""
    front = []
    for point in sorted(points, key=lambda p: (p.latency_ms, -p.score)):
        if not front or point.score > front[-1].score:
            front.append(point)
    return front


@dataclass(frozen=True)
class VariantOutcome:
    card: ModelCard
    result: Classification
    latency: StageLatency  # the model's inference, warm runs
    threads: int
    reference: str  # the card it is compared with
    same_top1: bool
    top5_overlap: int  # labels shared with the reference's top-5


def compare_precisions(hub: ModelHub, photo: Photo, task: str, display: str, threads: int, runs: int) -> list[VariantOutcome]:
    """One photo through every variant of a model, each compared with the fp32 file (or, where the catalog
    has no fp32 file of that model, with its first variant)."""
    variants = hub.store.catalog.variants(task, display)
    if not variants:
        raise ValueError(f"no {task} model named {display!r}")
    reference = next((c for c in variants if c.precision == "fp32"), variants[0])
    outcomes = {}
    for card in variants:
        classifier = Classifier(hub.load(card, threads))
        result = classifier(photo.image)
        report = time_variant(lambda c=classifier: c(photo.image).timings, card.name, threads, runs=runs, warmup=2)
        outcomes[card.name] = (card, result, report.stage("inference"))
    ref_top = outcomes[reference.name][1].top
    return [
        VariantOutcome(card, result, latency, threads, reference.name, result.top[0].index == ref_top[0].index,
                       len({p.index for p in result.top} & {p.index for p in ref_top}))
        for card, result, latency in outcomes.values()
    ]
