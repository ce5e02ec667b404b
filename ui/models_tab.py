"""The Models tab: every classifier and scene model with its size, arithmetic, accuracy and latency, read
from the lab's cache; an accuracy-latency plot on this host's or a phone's published latency."""

from __future__ import annotations

import gradio as gr

from pipelines.lab.precision import HOST_AXES, phone_axes, plot_points
from ui.context import AppContext
from ui.figures import accuracy_latency_figure
from ui.format import (
    MODEL_TABLE_HEADERS,
    PHONE_HEADERS,
    TASK_TITLES,
    all_phone_rows,
    model_table_rows,
)


def plot(ctx: AppContext, task: str, axis: str):
    points, missing = plot_points(ctx.catalog, ctx.evaluations, task, axis)
    note = ""
    if missing:
        note = f"No figure on this axis for: {', '.join(missing)}."
    if points and axis not in HOST_AXES:
        note += "\n\n" + "\n".join(f"- {p.card}: {p.latency_ms:g} ms, {p.how}" for p in points)
    return accuracy_latency_figure(points, task, axis), note


def build(ctx: AppContext) -> None:
    catalog = ctx.catalog
    axes = list(HOST_AXES) + phone_axes(catalog)
    gr.Markdown(
        "Every image classifier and scene model in the catalog (face models: see the Faces tab), "
        "computed by `python -m pipelines.lab.evaluate` and cached "
        "(`models/data/evaluation.csv`), not recomputed per view. Parameters and multiply-adds come "
        "from the graph itself; shares per layer type as in the MobileNet paper's Table 2. Accuracy: "
        "labeled photos in the project's evaluation set. Host latency: this machine, median inference "
        "stage of warm runs. Phone latency: published figures, never measured here."
    )
    gr.Dataframe(model_table_rows(catalog, ctx.evaluations), headers=MODEL_TABLE_HEADERS, interactive=False,
                 wrap=True, label="Variants", elem_id="model-table")
    with gr.Row():
        plot_task = gr.Radio([("ImageNet", "classification"), ("Scenes", "scene")], value="classification",
                             label="Task")
        plot_axis = gr.Dropdown(axes, value=axes[0], label="Latency axis")
    initial_figure, initial_note = plot(ctx, "classification", axes[0])
    figure = gr.Plot(initial_figure, label="Accuracy against latency", elem_id="accuracy-plot")
    plot_note = gr.Markdown(initial_note)
    gr.Dataframe(all_phone_rows(catalog, TASK_TITLES), headers=["card"] + PHONE_HEADERS[1:],
                 label="Published phone latencies (not measured here)", interactive=False, wrap=True)

    def replot(task, axis):
        return plot(ctx, task, axis)

    plot_task.change(replot, [plot_task, plot_axis], [figure, plot_note], api_name="models_plot")
    plot_axis.change(replot, [plot_task, plot_axis], [figure, plot_note], api_visibility="private")
