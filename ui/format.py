"""Pure formatting of results for the screens (no gradio): rows, cards and notes. Shared by the tabs and the
benchmarks."""

from __future__ import annotations

import html

from models.catalog import Catalog, ModelCard
from models.graph_stats import LAYER_NAMES
from pipelines.common.timing import StageLatency, stage_named
from pipelines.faces.gallery import Gallery
from pipelines.lab.photo import PhotoAnalysis, TaskResult
from pipelines.lab.precision import VariantOutcome, published_for, published_ms, task_rows
from pipelines.lab.records import CardEvaluation
from pipelines.lab.report import license_note

FP16_NOTE = (
    "fp16 on this CPU: ONNX Runtime's CPU kernels compute most operators in fp32, so an fp16 graph adds "
    "casts and is usually no faster (often slower) here. On a phone GPU or NPU fp16 is native and faster."
)
INT8_DYNAMIC_NOTE = (
    "int8 dynamic on this CPU: every convolution re-quantizes its input at run time (ConvInteger), which "
    "costs more than it saves in a convolutional network; the recipe suits matrix-multiply-heavy models. "
    "int8 static, calibrated ahead of time, is the fast int8 path here."
)
PHONE_HEADERS = ["model", "device", "runtime", "precision", "compute unit", "ms", "published model", "source"]
# every column inside the table's box on a desktop (gradio sizes a column to its longest text: the ms off screen)
PHONE_WIDTHS = ["13%", "11%", "11%", "15%", "11%", "10%", "14%", "15%"]
HOST_HEADERS = ["task", "model", "variant", "threads", "stage", "median ms", "p90 ms", "runs"]
HOST_WIDTHS = ["13%", "17%", "11%", "11%", "16%", "11%", "10%", "11%"]
LOSSY_POINTS = 2.0  # a variant losing more than this (top-1 points, mAP, pair accuracy) is lossy
UNUSABLE_SHARE = 0.5  # one keeping less than half its parent's figure is unusable
TASK_TITLES = {"classification": "ImageNet classifiers", "scene": "Scene models (Places365)",
               "object_detection": "Object detectors (COCO)", "face_detection": "Face detectors",
               "face_embedding": "Face embedders"}
MODEL_HEADERS = ["model", "variant", "MB", "measured", "against its parent", "ms here, 1 thread: median (p90)",
                 "phone ms (this file)"]
ARCHITECTURE_HEADERS = ["model", "variant", "runtime", "params M", "MACs M", "1x1 conv % MACs / params",
                        "depthwise %", "full conv %", "fully connected %", "license"]
LAYER_HEADERS = ["tensor", "op", "depth", "channels crushed %", "own SQNR dB", "SQNR against float dB"]
COMPARISON_HEADERS = ["task", "variant", "top-1", "ms here: warm median (p90)", "against the fp32 file"]
COMPARISON_WIDTHS = ["12%", "11%", "19%", "20%", "38%"]
STATS_HEADERS = ["layer type", "layers", "MACs M", "% of MACs", "params M", "% of params"]
STATS_WIDTHS = ["26%", "12%", "14%", "16%", "14%", "18%"]


def loss_note(card: ModelCard, evaluations: dict[str, CardEvaluation]) -> str:
    """How much a derived variant loses against its parent, as measured on the labeled photos ("" where it
    is not derived or not measured): said wherever the variant is offered."""
    mine, parent = evaluations.get(card.name), evaluations.get(card.derived_from or "")
    if mine is None or parent is None:
        return ""
    drop = parent.score - mine.score
    unit = "mAP" if mine.metric == "mAP@0.5" else "points"
    if mine.score < UNUSABLE_SHARE * parent.score:
        return f"{mine.metric} {mine.score:.1f} against {parent.score:.1f}: unusable"
    if drop > LOSSY_POINTS:
        return f"loses {drop:.1f} {unit}: lossy"
    return f"{round(-drop, 1) + 0.0:+.1f} {unit} against {parent.variant.split(' (')[0]}"  # never "-0.0"


def host_latency_rows(task: str, item: TaskResult) -> list[list]:
    report = item.latency
    return [
        [task, item.model.card.display, item.model.card.short_variant, report.threads, s.stage,
         round(s.median_ms, 2), round(s.p90_ms, 2), report.runs]
        for s in report.stages
    ]


def phone_line(card: ModelCard) -> str:
    """This variant's own published figure (the fastest device), or why there is none."""
    figures = published_for(card)
    if not figures:
        related = " (related figures below)" if card.phone_latency else ""
        return f"phone: none published for this file at {card.precision}{related}"
    best = min(figures, key=published_ms)
    more = f"; {len(figures) - 1} more below" if len(figures) > 1 else ""
    return (f"phone: <b>{html.escape(best.latency_ms)} ms</b> {html.escape(best.device)}, "
            f"{html.escape(best.compute_unit)} ({html.escape(best.runtime)} {html.escape(best.precision)}, published){more}")


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 1 else f"{value:.1f}"  # a tiny uploaded model is not "0.0 ms"


def _threads(threads: int) -> str:
    return f"{threads} thread{'s' if threads > 1 else ''}"


def here_ms(latency: StageLatency, threads: int, what: str = "") -> str:
    """A figure measured here as every headline states it: warm median, p90, threads and runs."""
    return (f"<b>{_ms(latency.median_ms)} ms</b> here{' ' + what if what else ''} ({_threads(threads)}, "
            f"median of {latency.runs} warm runs; p90 {_ms(latency.p90_ms)})")


def ms_cell(latency: StageLatency, threads: int) -> str:
    """A figure measured here, in a table cell: warm median, p90, threads and runs."""
    return f"{latency.median_ms:.2f} (p90 {latency.p90_ms:.2f}); {_threads(threads)}, {latency.runs} runs"


def photo_summary(analysis: PhotoAnalysis, faces: list[str], evaluations: dict[str, CardEvaluation]) -> str:
    """The headline of each task: its answer, the milliseconds here and the phone's figure, one line each."""

    def line(key: str, title: str, item: TaskResult, answer: str) -> str:
        card = item.model.card
        inference = item.latency.stage("inference")
        lossy = loss_note(card, evaluations)
        model = html.escape(f"{card.display} {card.short_variant}") + (f" ({html.escape(lossy)})" if lossy else "")
        return (f'<div class="mvl-line" id="summary-{key}"><b>{title}</b>: {answer} · '
                f"{here_ms(inference, item.latency.threads)} · {phone_line(card)} · "
                f"<small>{model}</small></div>")

    top = analysis.imagenet.result.top[0]
    scene = analysis.scene.result
    lines = [line("imagenet", "ImageNet", analysis.imagenet, f"<b>{html.escape(top.label)}</b> {top.score:.2f}"),
             line("scene", "Scene", analysis.scene,
                  f"<b>{html.escape(scene.top[0].label)}</b> {scene.top[0].score:.2f}, {scene.environment}")]
    if analysis.objects:
        found = analysis.objects.result.detections
        counts: dict[str, int] = {}
        for d in found:
            counts[d.label] = counts.get(d.label, 0) + 1
        answer = ", ".join(f"<b>{html.escape(k)}</b>" + (f" ×{n}" if n > 1 else "") for k, n in counts.items()) \
            or "nothing over the threshold"
        lines.append(line("objects", "Objects", analysis.objects, answer))
    who = "; ".join(f"face {i + 1}: {html.escape(w)}" for i, w in enumerate(faces)) or "no face of at least 96 px"
    lines.append(f'<div class="mvl-line" id="summary-faces"><b>Faces</b>: {who}</div>')
    return '<div class="mvl-summary">' + "".join(lines) + "</div>"


def phone_latency_rows(card: ModelCard) -> list[list]:
    return [
        [card.display, p.device, p.runtime, p.precision, p.compute_unit, p.latency_ms, p.match, p.source]
        for p in card.phone_latency
    ]


def all_phone_rows(catalog: Catalog, tasks=None) -> list[list]:
    return [[card.name] + row[1:] for card in catalog if tasks is None or card.task in tasks
            for row in phone_latency_rows(card)]


ORIGINS = {"local folder": "file from a local model folder", "cache": "file from the cache",
           "download": "file downloaded from its public source", "rebuilt": "file rebuilt here from public weights",
           "derived": "file derived here", "bundled": "file bundled with this Space"}


def card_markdown(item: TaskResult, evaluations: dict[str, CardEvaluation] | None = None) -> str:
    card, file = item.model.card, item.model.file
    size_mb = file.path.stat().st_size / 1e6
    lines = [
        f"### {card.display}: {card.variant}",
        f"- card `{card.name}`; runtime **{card.runtime}**; task {card.task}",
        f"- size on disk **{size_mb:.2f} MB**; sha256 `{file.sha256[:16]}…`; {ORIGINS.get(file.origin, file.origin)}",
        f"- input: {card.input.describe()}",
        f"- output: {card.output.classes} {card.output.kind}"
        + ("; index 0 is 'background' and is dropped" if card.output.background_class else ""),
        f"- license: {card.license}",
    ]
    if card.derived_from:
        lines.append(f"- derived here from `{card.derived_from}`: {card.recipe.describe()}")
        lossy = loss_note(card, evaluations or {})
        if lossy:
            lines.append(f"- measured on the labeled photos: {lossy}")
    lines += [f"- source: {s.what}" + (f" ({s.url})" if s.url else "") for s in card.sources]
    if card.precision == "fp16":
        lines.append(f"- {FP16_NOTE}")
    if card.recipe and card.recipe.kind == "int8_dynamic":
        lines.append(f"- {INT8_DYNAMIC_NOTE}")
    return "\n".join(lines)


def faces_latency_line(stages: tuple[StageLatency, ...], faces: int, threads: int, cards: tuple[ModelCard, ...]) -> str:
    """The Faces tab's headline figure: the whole pipeline's warm median here, and each model's phone figure (a
    detector of several files: the file with a published figure, else its first)."""
    total = stage_named(stages, "total")
    models: dict[str, ModelCard] = {}
    for card in cards:
        if card.display not in models or (published_for(card) and not published_for(models[card.display])):
            models[card.display] = card
    phones = " · ".join(f"{html.escape(name)} {phone_line(card)}" for name, card in models.items())
    what = f"for detection, alignment and {faces} embedding{'' if faces == 1 else 's'}" if faces else "for detection"
    return f"{here_ms(total, threads, what)} · {phones}"


def phone_markdown(cards: tuple[ModelCard, ...]) -> str:
    missing = dict.fromkeys(c.display + " " + c.variant for c in cards if not c.phone_latency)
    return "\n".join(f"- {name}: no published measurement for this model" for name in missing)


def model_rows(catalog: Catalog, evaluations: dict[str, CardEvaluation], task: str) -> list[list]:
    """What a person compares variants on, narrow enough to read without scrolling sideways."""
    from pipelines.lab.report import against_parent, figure

    rows = []
    for key, card, model, variant in task_rows(catalog, task):
        r = evaluations.get(key)
        if card is not None:
            phones = published_for(card)
            phone = f"{min(published_ms(p) for p in phones):g} ({len(phones)} device{'s' if len(phones) > 1 else ''})" \
                if phones else "–"
        else:
            phone = "–"
        if r is None:
            rows.append([model, variant, "", "not evaluated yet: python -m pipelines.lab.evaluate", "", "", phone])
            continue
        parent = evaluations.get(r.derived_from)
        lossy = loss_note(card, evaluations) if card is not None else ""
        against = against_parent(r, parent) + (f" ({lossy.split(': ')[-1]})" if lossy.endswith(("lossy", "unusable"))
                                               else "")
        rows.append([model, variant, round(r.size_mb, 2), figure(r), against,
                     f"{r.latency_1t_ms:.2f} ({r.latency_1t_p90_ms:.2f})", phone])
    return rows


def architecture_rows(catalog: Catalog, evaluations: dict[str, CardEvaluation], task: str) -> list[list]:
    rows = []
    for key, _, model, variant in task_rows(catalog, task):
        r = evaluations.get(key)
        if r is None:
            continue

        def pair(kind: str) -> str:
            return f"{getattr(r, f'macs_{kind}_pct'):.1f} / {getattr(r, f'params_{kind}_pct'):.1f}" if r.macs else "varies"
        rows.append([model, variant, r.runtime, round(r.params / 1e6, 3), round(r.macs / 1e6, 1) if r.macs else "varies",
                     pair("conv_1x1"), pair("depthwise"), pair("conv_full"), pair("fully_connected"),
                     license_note(r.license)])
    return rows


def layer_rows(report, top: int = 15) -> list[list]:
    return [[t.tensor, t.op_type, round(t.depth, 2), "–" if t.crushed is None else round(100 * t.crushed),
             round(t.own_db, 1), round(t.accumulated_db, 1)] for t in report.ranked()[:top]]


def comparison_rows(task: str, outcomes: list[VariantOutcome],
                    evaluations: dict[str, CardEvaluation] | None = None) -> list[list]:
    rows = []
    reference = {o.card.name: o for o in outcomes}[outcomes[0].reference]
    for o in outcomes:
        top = f"{o.result.top[0].label} {o.result.top[0].score:.2f}"
        if o.card.name == o.reference:
            change = "reference"
        elif o.same_top1:
            change = f"same top-1; {o.top5_overlap}/5 of the top-5 shared"
        else:
            change = f"top-1 differs (fp32: {reference.result.top[0].label}); {o.top5_overlap}/5 of the top-5 shared"
        lossy = loss_note(o.card, evaluations or {})
        if lossy:
            change += f"; on the labeled photos: {lossy}"
        rows.append([task, o.card.short_variant, top, ms_cell(o.latency, o.threads), change])
    return rows


def stats_rows(stats) -> list[list]:
    rows = []
    for row in stats.by_type:
        macs_share, params_share = stats.share(row.layer_type)
        rows.append([LAYER_NAMES[row.layer_type], row.layers, round(row.macs / 1e6, 2), round(100 * macs_share, 1),
                     round(row.params / 1e6, 4), round(100 * params_share, 1)])
    return rows + [["total", sum(r.layers for r in stats.by_type), round(stats.macs / 1e6, 2), 100.0,
                    round(stats.params / 1e6, 4), 100.0]]


def gallery_rows(gallery: Gallery) -> list[list]:
    return [[name, sum(e.name == name for e in gallery.entries), gallery.card] for name in gallery.names()]

