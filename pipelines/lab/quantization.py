"""int8 static variants examined and repaired by measurement.

    python -m pipelines.lab.quantization report yolox_nano.int8_static_onnx [--top 20]
    python -m pipelines.lab.quantization split squeezenet1.1_places365.int8_static_onnx
    python -m pipelines.lab.quantization mixed yolox_nano.int8_static_onnx [--max-steps 10]

`report`: the per-layer report of an int8 static card against its fp32 parent (models/sensitivity.py), on
photos held out from its calibration. `split`: whether the loss lies in the weights or the activations: the
card's fidelity with its int8 weights alone (float activations) and with its uint8 activations alone (float
weights), beside the file's own, on all its held-out photos. `mixed`: the mixed-precision search: the card's
recipe without any float tensors, then the most suspect tensors of that report kept in float one at a time
(each step derived again and checked on the held-out photos), a step kept only where it helps, until the
variant is within the task's tolerance of its parent. It prints every step (fidelity, size, latency at 1
thread) and the recipe line for models/data/catalog.toml.

Fidelity against the parent, on the held-out photos (labels are not needed, and no reported figure's photo
is used): classifiers and scene models, the share of photos with the same top-1 (tolerance 95 %);
detectors, the mAP@0.5 of the variant's detections taking the parent's detections over 0.3 as the truth
(tolerance 75: a variant within 1 point of its parent's COCO mAP scores 77-79 here, the generic int8 recipe
19).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
from PIL import Image

from models import derive
from models.catalog import ModelCard
from models.hub import LoadedModel, ModelHub
from models.sensitivity import LayerReport, activations_alone, layer_report, weights_alone
from models.store import ResolvedFile
from pipelines.common.calibration import calibration_inputs, check_photo_paths, open_photos
from pipelines.common.preprocess import to_input_tensor
from pipelines.common.timing import StageLatency, call_latency
from pipelines.lab.metrics import Box, map50
from pipelines.vision.classification import Classifier
from pipelines.vision.objects import ObjectDetector

TOLERANCE = {"classification": 95.0, "scene": 95.0, "object_detection": 75.0}
REPORT_PHOTOS = 8  # the per-layer report's photos: each runs both graphs with every tensor saved
PARENT_DETECTIONS = 0.3  # a detector's detections over this score stand for the truth


def _loaded(card: ModelCard, path: Path, threads: int = 1, **backend_options) -> LoadedModel:
    from models.backends import backend_class

    return LoadedModel(card, ResolvedFile(card, path, "derived", 0.0, ""),
                       backend_class(card.runtime)(path, threads, **backend_options))


class Fidelity:
    """A variant against its parent on held-out photos, by the task's own output."""

    def __init__(self, parent: LoadedModel, photos: list[Image.Image]):
        self.task, self.photos = parent.card.task, photos
        if self.task not in TOLERANCE:
            raise ValueError(f"no fidelity measure for {self.task} models")
        self.tolerance = TOLERANCE[self.task]
        self.reference = self._outputs(parent, PARENT_DETECTIONS)

    def _outputs(self, model: LoadedModel, threshold: float = 0.01):
        if self.task == "object_detection":
            detector = ObjectDetector(model)
            return [detector(image, score_threshold=threshold).detections for image in self.photos]
        classifier = Classifier(model)
        return np.array([int(np.argmax(classifier.run(image)[0])) for image in self.photos])

    def __call__(self, variant: LoadedModel) -> float:
        found = self._outputs(variant)
        if self.task == "object_detection":
            truth = [[Box(d.box, d.class_index) for d in image] for image in self.reference]
            return round(100 * map50(truth, found), 1)
        return round(100 * float(np.mean(found == self.reference)), 1)

    @property
    def measure(self) -> str:
        return ("mAP@0.5 against the parent's detections" if self.task == "object_detection"
                else "same top-1 as the parent, %")


def inference_latency(model: LoadedModel, tensor: np.ndarray, runs: int = 15) -> StageLatency:
    """Warm median and p90 of the model alone on a photo's tensor, at the threads it was loaded with (an all-zero
    input times a graph with float islands much faster than photos run it)."""
    return call_latency(lambda: model.backend.run(tensor), runs, name="inference")


def _static_card(hub: ModelHub, card: ModelCard | str) -> ModelCard:
    card = hub.store.catalog[card] if isinstance(card, str) else card
    if card.recipe is None or card.recipe.kind != "int8_static" or card.runtime != "onnx":
        raise ValueError(f"{card.name} is not an int8 static ONNX variant: the report compares a QDQ file with "
                         "its float parent")
    return card


def _float_source(card: ModelCard, parent: LoadedModel, folder: Path) -> Path:
    """The float graph the card's QDQ file was quantized from: the one whose tensors it is compared with."""
    return derive.float_source(parent.file.path, folder, calibration_inputs(card), card.recipe.equalize)


def card_report(hub: ModelHub, card: ModelCard | str, photos: int = REPORT_PHOTOS) -> LayerReport:
    """The per-layer report of a catalog int8 static card against its parent, on held-out photos."""
    card = _static_card(hub, card)
    variant, parent = hub.load(card), hub.load(card.derived_from)
    images = open_photos(check_photo_paths(card.recipe.calibration, card.task)[:photos])
    with tempfile.TemporaryDirectory(prefix="mvl-report-") as tmp:
        return layer_report(_float_source(card, parent, Path(tmp)), variant.file.path,
                            [to_input_tensor(i, parent.card.input) for i in images])


@dataclass(frozen=True)
class LossSplit:
    """A variant's fidelity to its parent, and with only its weights or only its activations quantized."""

    card: str
    measure: str
    photos: int
    int8: float
    weights_alone: float  # int8 weights as the file rounds them, float activations
    activations_alone: float  # the file's uint8 activations, the parent's float weights


def loss_split(hub: ModelHub, card: ModelCard | str) -> LossSplit:
    card = _static_card(hub, card)
    variant, parent = hub.load(card), hub.load(card.derived_from)
    check = Fidelity(parent, open_photos(check_photo_paths(card.recipe.calibration, card.task)))
    qdq = onnx.load(str(variant.file.path))
    figures = []
    with tempfile.TemporaryDirectory(prefix="mvl-split-") as tmp:
        prepared = onnx.load(str(derive.prepare(_float_source(card, parent, Path(tmp)), Path(tmp))))
        for i, graph in enumerate((weights_alone(qdq), activations_alone(qdq, prepared))):
            path = Path(tmp) / f"split{i}.onnx"
            onnx.save(graph, str(path))
            figures.append(check(_loaded(card, path, as_written=True)))
    return LossSplit(card.name, check.measure, len(check.photos), check(variant), *figures)


@dataclass(frozen=True)
class Step:
    keep_float: tuple[str, ...]
    tried: str  # the tensor this step kept in float ("" for the plain recipe)
    fidelity: float
    size_mb: float
    latency: StageLatency  # at 1 thread
    kept: bool  # whether the step helped and stays in the recipe


@dataclass(frozen=True)
class MixedPrecision:
    card: str
    measure: str
    tolerance: float
    parent_latency: StageLatency  # at 1 thread
    parent_size_mb: float
    steps: tuple[Step, ...]

    @property
    def chosen(self) -> Step:
        return [s for s in self.steps if s.kept][-1]

    @property
    def within(self) -> bool:
        return self.chosen.fidelity >= self.tolerance


def mixed_precision(hub: ModelHub, card: ModelCard | str, max_steps: int = 10,
                    progress: Callable[[Step], None] | None = None) -> MixedPrecision:
    card = hub.store.catalog[card] if isinstance(card, str) else card
    if card.recipe is None or card.recipe.kind != "int8_static":
        raise ValueError(f"{card.name} is not an int8 static variant")
    parent = hub.load(card.derived_from)
    check = Fidelity(parent, open_photos(check_photo_paths(card.recipe.calibration, card.task)))
    calibration = calibration_inputs(card)()
    timed = to_input_tensor(check.photos[0], parent.card.input)
    steps: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="mvl-mixed-") as tmp:
        def attempt(keep: tuple[str, ...], tried: str) -> tuple[Step, Path]:
            path = Path(tmp) / f"step{len(steps)}.onnx"
            # without the recipe's fine-tuning, if any: minutes a step
            derive.to_int8_static(parent.file.path, path, calibration, keep, card.recipe.equalize,
                                  card.recipe.bias_correct)
            variant = _loaded(replace(card, recipe=replace(card.recipe, keep_float=keep)), path)
            step = Step(keep, tried, check(variant), path.stat().st_size / 1e6, inference_latency(variant, timed), True)
            return step, path

        step, path = attempt((), "")
        steps.append(step)
        if progress:
            progress(step)
        source = derive.float_source(parent.file.path, Path(tmp), lambda: calibration, card.recipe.equalize)
        report = layer_report(source, path,
                              [to_input_tensor(i, parent.card.input) for i in check.photos[:REPORT_PHOTOS]])
        best = step
        for suspect in report.ranked()[:max_steps]:
            if best.fidelity >= check.tolerance:
                break
            step, _ = attempt(best.keep_float + (suspect.tensor,), suspect.tensor)
            helped = step.fidelity > best.fidelity + 0.5  # a step that does not help is not kept
            steps.append(replace(step, kept=helped))
            if progress:
                progress(steps[-1])
            if helped:
                best = step
    return MixedPrecision(card.name, check.measure, check.tolerance,
                          inference_latency(hub.load(card.derived_from, 1), timed),
                          parent.file.path.stat().st_size / 1e6, tuple(steps))


def split_sentence(report: LayerReport) -> str:
    """Where the report's output noise comes from, in words."""
    weights, activations = report.weights_alone_db, report.activations_alone_db
    where = ("in both alike" if abs(weights - activations) < 1.0  # 1 dB: about 12 % more noise
             else f"mostly in the {'activations' if activations < weights else 'weights'}")
    return (f"{weights:.1f} dB with its int8 weights alone, {activations:.1f} dB with its uint8 activations "
            f"alone: the loss lies {where}")


def _report_table(report: LayerReport, top: int) -> str:
    lines = [f"output SQNR {report.output_db:.1f} dB on {report.inputs} held-out photos ({split_sentence(report)}); "
             "most suspect tensors:",
             "| tensor | op | depth | own SQNR dB | SQNR vs float dB | channels crushed |", "|---|---|---|---|---|---|"]
    for t in report.ranked()[:top]:
        crushed = "–" if t.crushed is None else f"{100 * t.crushed:.0f} % (median channel {t.median_levels:.0f} steps)"
        lines.append(f"| {t.tensor} | {t.op_type} | {t.depth:.2f} | {t.own_db:.1f} | {t.accumulated_db:.1f} | {crushed} |")
    worst = sorted(report.weights, key=lambda w: w.db)[:3]
    lines.append("weights with the lowest SQNR: " + ", ".join(f"{w.node} {w.db:.1f} dB" for w in worst))
    return "\n".join(lines)


def _ms(latency: StageLatency) -> str:
    return f"{latency.median_ms:.1f} ms (p90 {latency.p90_ms:.1f}, {latency.runs} warm runs) at 1 thread"


def main(argv: list[str] | None = None) -> int:
    from pipelines.common.hub import open_hub

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    reporting = commands.add_parser("report", help="the per-layer report of an int8 static card")
    reporting.add_argument("card")
    reporting.add_argument("--top", type=int, default=20)
    splitting = commands.add_parser("split", help="an int8 static card's loss: weights or activations")
    splitting.add_argument("card")
    searching = commands.add_parser("mixed", help="the mixed-precision search for an int8 static card")
    searching.add_argument("card")
    searching.add_argument("--max-steps", type=int, default=10)
    args = parser.parse_args(argv)
    try:
        return _run(open_hub(), args)
    except (KeyError, ValueError) as exc:  # an unknown card, or one these commands cannot examine
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(hub: ModelHub, args: argparse.Namespace) -> int:
    if args.command == "report":
        print(_report_table(card_report(hub, args.card), args.top))
        return 0
    if args.command == "split":
        split = loss_split(hub, args.card)
        print(f"{split.card}, {split.measure}, on {split.photos} held-out photos:\n"
              f"| quantized | fidelity |\n|---|---|\n| weights and activations (the file) | {split.int8:.1f} |\n"
              f"| weights alone (float activations) | {split.weights_alone:.1f} |\n"
              f"| activations alone (float weights) | {split.activations_alone:.1f} |")
        return 0

    def show(step: Step) -> None:
        what = f"+ {step.tried}" if step.tried else "the recipe, nothing in float"
        print(f"  {what}: fidelity {step.fidelity:.1f}, {step.size_mb:.2f} MB, {_ms(step.latency)}"
              + ("" if step.kept else " (no help: not kept)"), flush=True)

    result = mixed_precision(hub, args.card, args.max_steps, show)
    chosen = result.chosen
    print(f"\n{result.card}: {result.measure} {chosen.fidelity:.1f} (tolerance {result.tolerance:.0f}); "
          f"{chosen.size_mb:.2f} MB, {_ms(chosen.latency)} against the parent's "
          f"{result.parent_size_mb:.2f} MB, {_ms(result.parent_latency)}; {len(chosen.keep_float)} tensor(s) in float"
          + ("" if result.within else f": NOT within tolerance after {len(result.steps) - 1} steps"))
    if chosen.keep_float and chosen.latency.median_ms >= result.parent_latency.median_ms:
        print("slower than its float parent, which is exact: not worth shipping; keep the recipe without float tensors")
    if chosen.keep_float:
        names = ", ".join(f'"{t}"' for t in chosen.keep_float)
        print(f"recipe: keep_float = [{names}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
