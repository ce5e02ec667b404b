"""Pure formatting of results for the screens (no gradio): rows, cards and notes. Shared by the tabs and the
benchmarks."""

from __future__ import annotations

from models.catalog import Catalog, ModelCard
from models.graph_stats import LAYER_NAMES
from pipelines.faces.gallery import Gallery
from pipelines.lab.photo import TaskResult
from pipelines.lab.precision import VariantOutcome
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
HOST_HEADERS = ["task", "model", "variant", "threads", "stage", "median ms", "p90 ms", "runs"]
TASK_TITLES = {"classification": "ImageNet classifiers", "scene": "Scene models (Places365)"}
MODEL_TABLE_HEADERS = [
    "card", "task", "model", "variant", "runtime", "derived from", "license", "size MB", "params M", "MACs M",
    "1x1 conv % MACs / params", "depthwise %", "full conv %", "fully connected %", "eval photos", "top-1 %",
    "top-5 %", "agrees with fp32 %", "output cosine", "host ms, 1 thread", "host ms, 2 threads",
    "published phone figures",
]
COMPARISON_HEADERS = ["task", "variant", "card", "top-5", "inference ms (median)", "against the reference"]
STATS_HEADERS = ["layer type", "layers", "MACs M", "% of MACs", "params M", "% of params"]


def host_latency_rows(task: str, item: TaskResult) -> list[list]:
    report = item.latency
    return [
        [task, item.model.card.display, item.model.card.variant, report.threads, s.stage,
         round(s.median_ms, 2), round(s.p90_ms, 2), report.runs]
        for s in report.stages
    ]


def phone_latency_rows(card: ModelCard) -> list[list]:
    return [
        [card.display, p.device, p.runtime, p.precision, p.compute_unit, p.latency_ms, p.match, p.source]
        for p in card.phone_latency
    ]


def all_phone_rows(catalog: Catalog, tasks=None) -> list[list]:
    return [[card.name] + row[1:] for card in catalog if tasks is None or card.task in tasks
            for row in phone_latency_rows(card)]


def card_markdown(item: TaskResult) -> str:
    card, file = item.model.card, item.model.file
    size_mb = file.path.stat().st_size / 1e6
    lines = [
        f"### {card.display}: {card.variant}",
        f"- card `{card.name}`; runtime **{card.runtime}**; task {card.task}",
        f"- size on disk **{size_mb:.2f} MB**; sha256 `{file.sha256[:16]}…`; file from the {file.origin}",
        f"- input: {card.input.describe()}",
        f"- output: {card.output.classes} {card.output.kind}"
        + ("; index 0 is 'background' and is dropped" if card.output.background_class else ""),
        f"- license: {card.license}",
    ]
    if card.derived_from:
        lines.append(f"- derived here from `{card.derived_from}` by the recipe {card.recipe.as_dict()}")
    lines += [f"- source: {s.what}" + (f" ({s.url})" if s.url else "") for s in card.sources]
    if card.precision == "fp16":
        lines.append(f"- {FP16_NOTE}")
    if card.recipe and card.recipe.kind == "int8_dynamic":
        lines.append(f"- {INT8_DYNAMIC_NOTE}")
    return "\n".join(lines)


def phone_markdown(cards: tuple[ModelCard, ...]) -> str:
    missing = dict.fromkeys(c.display + " " + c.variant for c in cards if not c.phone_latency)
    return "\n".join(f"- {name}: no published measurement for this model" for name in missing)


def model_table_rows(catalog: Catalog, evaluations: dict[str, CardEvaluation]) -> list[list]:
    rows = []
    for card in (c for c in catalog if c.task in TASK_TITLES):
        r = evaluations.get(card.name)
        phones = f"{len(card.phone_latency)} (below)" if card.phone_latency else "none published"
        if r is None:
            rows.append([card.name, card.task, card.display, card.variant, card.runtime, card.derived_from or "",
                         card.license] + ["not evaluated yet: run python -m pipelines.lab.evaluate"] + [""] * 13
                        + [phones])
            continue

        def pair(kind: str) -> str:
            return f"{getattr(r, f'macs_{kind}_pct'):.1f} / {getattr(r, f'params_{kind}_pct'):.1f}"
        rows.append([
            r.card, r.task, r.model, r.variant, r.runtime, r.derived_from or "original file",
            license_note(r.license), round(r.size_mb, 2), round(r.params / 1e6, 3), round(r.macs / 1e6, 1),
            pair("conv_1x1"), pair("depthwise"), pair("conv_full"), pair("fully_connected"), f"{r.photos} {r.eval_set}",
            round(r.top1_pct, 1), round(r.top5_pct, 1),
            "" if r.agreement_pct is None else round(r.agreement_pct, 1),
            "" if r.cosine is None else round(r.cosine, 4), round(r.latency_1t_ms, 2), round(r.latency_2t_ms, 2),
            phones,
        ])
    return rows


def comparison_rows(task: str, outcomes: list[VariantOutcome]) -> list[list]:
    rows = []
    reference = {o.card.name: o for o in outcomes}[outcomes[0].reference]
    for o in outcomes:
        top = "; ".join(f"{p.label} {p.score:.2f}" for p in o.result.top)
        if o.card.name == o.reference:
            change = "reference"
        elif o.same_top1:
            change = f"same top-1; {o.top5_overlap}/5 of the top-5 shared"
        else:
            change = (f"top-1 differs: {o.result.top[0].label} (reference: {reference.result.top[0].label}); "
                      f"{o.top5_overlap}/5 of the top-5 shared")
        rows.append([task, o.card.variant, o.card.name, top, round(o.inference_ms, 2), change])
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

