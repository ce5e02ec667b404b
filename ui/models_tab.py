"""The Models tab: every model of a task with its size, its figure on labeled photos, what a derived variant
loses against its parent, and latency here and on phones; an interactive plot of the figure against latency;
and, for int8 static variants, where the loss happens, layer by layer."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from pipelines.common.calibration import has_check_photos
from pipelines.lab.precision import HOST_AXES, pareto_front, phone_axes, plot_points
from pipelines.lab.quantization import card_report, split_sentence
from ui.context import AppContext
from ui.format import (
    ARCHITECTURE_HEADERS,
    MODEL_HEADERS,
    PHONE_HEADERS,
    PHONE_WIDTHS,
    TASK_TITLES,
    all_phone_rows,
    architecture_rows,
    layer_rows,
    LAYER_HEADERS,
    model_rows,
)
from ui.requests import bind, error_box, request, wire

Y_TITLES = {"classification": "top-1 % (ImageNet photos)", "scene": "top-1 % (MiniPlaces photos)",
            "object_detection": "mAP@0.5 (COCO photos)", "face_detection": "faces found % (group photos)",
            "face_embedding": "balanced pair accuracy % (LFW photos)"}


def plot(ctx: AppContext, task: str, axis: str):
    """The native plot of a task's points (hover shows each one's model, variant, size, latency source)."""
    frame, note = plot_frame(ctx, task, axis)
    return gr.ScatterPlot(frame, x="latency ms", y="figure", color="model", tooltip="all", y_title=Y_TITLES[task],
                          x_title=f"latency, ms ({axis})"), note


def plot_frame(ctx: AppContext, task: str, axis: str) -> tuple[pd.DataFrame, str]:
    points, missing = plot_points(ctx.catalog, ctx.evaluations, task, axis)
    frame = pd.DataFrame([{"model": p.model, "variant": p.variant, "latency ms": round(p.latency_ms, 3),
                           "figure": round(p.score, 1), "size MB": round(p.size_mb, 2), "latency from": p.how}
                          for p in points], columns=["model", "variant", "latency ms", "figure", "size MB", "latency from"])
    notes = []
    if points:
        front = ", ".join(f"{p.model} {p.variant}" for p in pareto_front(points))
        notes.append(f"Nothing is both faster and better than: {front}.")
    if missing:
        notes.append(f"No figure on this axis for: {', '.join(missing)} (a phone axis shows a variant's own "
                     "published figure only: the same file or weights at the same precision).")
    return frame, "\n\n".join(notes)


def tables(ctx: AppContext, task: str):
    return model_rows(ctx.catalog, ctx.evaluations, task), architecture_rows(ctx.catalog, ctx.evaluations, task)


def _static_onnx(ctx: AppContext) -> list:
    return [c for c in ctx.catalog if c.recipe is not None and c.recipe.kind == "int8_static" and c.runtime == "onnx"]


def int8_cards(ctx: AppContext) -> list[tuple[str, str]]:
    """The int8 static ONNX variants with held-out photos to report on."""
    return [(f"{c.display} {c.short_variant}", c.name) for c in _static_onnx(ctx)
            if has_check_photos(c.recipe.calibration)]


def unreported_note(ctx: AppContext) -> str:
    left = [c for c in _static_onnx(ctx) if not has_check_photos(c.recipe.calibration)]
    return (f"Not offered: {', '.join(f'{c.display} {c.short_variant}' for c in left)}: no held-out photos of the "
            f"kind it was calibrated on ({', '.join(sorted({c.recipe.calibration for c in left}))}).") if left else ""


@request("int8_layers")
def layers(ctx: AppContext, card: str):
    if card not in dict((name, label) for label, name in int8_cards(ctx)):
        raise ValueError(f"{card} is not an int8 static ONNX variant")
    report = card_report(ctx.hub, card)
    depth = pd.DataFrame(
        [row for t in report.tensors for row in (
            {"depth": round(t.depth, 4), "SQNR dB": round(min(t.accumulated_db, 80.0), 2), "measure": "against the float graph",
             "tensor": t.tensor},
            {"depth": round(t.depth, 4), "SQNR dB": round(min(t.own_db, 80.0), 2), "measure": "its own quantization",
             "tensor": t.tensor})],
        columns=["depth", "SQNR dB", "measure", "tensor"])
    summary = (f"Output SQNR **{report.output_db:.1f} dB** on {report.inputs} held-out photos "
               f"({split_sentence(report)}). The table ranks "
               "tensors by the share of channels the shared uint8 scale leaves with fewer than 4 steps, then by "
               "the noise of their own quantization; `python -m pipelines.lab.quantization mixed` keeps the "
               "worst in float until the variant is within tolerance.")
    return layer_rows(report), gr.LinePlot(depth, x="depth", y="SQNR dB", color="measure", tooltip="all"), summary


def build(ctx: AppContext) -> None:
    tasks = [(title, task) for task, title in TASK_TITLES.items()]
    gr.Markdown(
        "Every model of a task, measured by `python -m pipelines.lab.evaluate` on labeled photos and cached "
        "(`models/data/evaluation.csv`), not per view. Derived variants say what they lose against their parent. "
        "Latency here: this machine, the model alone, median and p90 of warm runs. Phone: published figures of "
        "this very file or weights at this precision, never measured here."
    )
    task = gr.Radio(tasks, value="classification", label="Task", elem_id="models-task")
    first_rows, first_architecture = tables(ctx, "classification")
    table = gr.Dataframe(first_rows, headers=MODEL_HEADERS, interactive=False, wrap=True, label="Variants",
                         elem_id="model-table", column_widths=["18%", "12%", "6%", "17%", "25%", "11%", "11%"],
                         max_height=420)
    axes = list(HOST_AXES) + phone_axes(ctx.catalog, tuple(TASK_TITLES))
    axis = gr.Dropdown(axes, value=axes[0], label="Latency axis")
    frame, note = plot_frame(ctx, "classification", axes[0])
    chart = gr.ScatterPlot(frame, x="latency ms", y="figure", color="model", tooltip="all",
                           y_title=Y_TITLES["classification"], x_title=f"latency, ms ({axes[0]})", height=360,
                           label="Figure against latency (hover a point)", elem_id="accuracy-plot")
    plot_note = gr.Markdown(note, elem_id="plot-note")
    with gr.Accordion("Size and arithmetic (parameters, multiply-adds by layer type)", open=False):
        architecture = gr.Dataframe(first_architecture, headers=ARCHITECTURE_HEADERS, interactive=False, wrap=True,
                                    elem_classes=["mvl-architecture-table"])
    with gr.Accordion("Where an int8 static variant loses, layer by layer", open=False):
        with gr.Row():
            offered = int8_cards(ctx)
            int8_card = gr.Dropdown(offered, value=offered[0][1], label="int8 static variant")
            report_button = gr.Button("Per-layer report", elem_id="layer-report")
        not_offered = unreported_note(ctx)
        if not_offered:
            gr.Markdown(not_offered)
        errors = error_box("models-error")
        layer_summary = gr.Markdown(elem_id="layer-summary")
        layer_plot = gr.LinePlot(x="depth", y="SQNR dB", color="measure", label="SQNR along the graph (0: input)",
                                 elem_id="layer-plot")
        layer_table = gr.Dataframe(headers=LAYER_HEADERS, interactive=False, wrap=True, elem_id="layer-table",
                                   elem_classes=["mvl-layer-table"])
    with gr.Accordion("Every published phone latency", open=False):
        gr.Dataframe(all_phone_rows(ctx.catalog), headers=["card"] + PHONE_HEADERS[1:], interactive=False, wrap=True,
                     column_widths=PHONE_WIDTHS, elem_classes=["mvl-phone-table"])

    def on_task(chosen, chosen_axis):
        rows, arithmetic = tables(ctx, chosen)
        points, text = plot(ctx, chosen, chosen_axis)
        return rows, arithmetic, points, text

    def on_axis(chosen, chosen_axis):
        return plot(ctx, chosen, chosen_axis)

    task.change(on_task, [task, axis], [table, architecture, chart, plot_note], api_visibility="private")
    axis.change(on_axis, [task, axis], [chart, plot_note], api_name="models_plot")
    wire(report_button.click, bind(ctx, layers), [int8_card], [layer_table, layer_plot, layer_summary], errors,
         api_name="int8_layers")
