"""The Your-model tab: an uploaded .onnx or .tflite classifier measured, run on a photo and, for ONNX,
derived to fp16 / int8 variants; everything in the session's own folder."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from pipelines.lab.custom_model import (
    MAX_MODEL_BYTES,
    OUTPUT_KINDS,
    RESIZES,
    SCALINGS,
    Form,
    UploadReport,
)
from pipelines.lab.sandbox import run_upload as run_in_worker
from ui.context import EXAMPLE_PHOTOS, AppContext
from ui.format import STATS_HEADERS, STATS_WIDTHS, here_ms, ms_cell, stats_rows
from ui.pickers import threads_picker
from ui.requests import bind, error_box, request, wire
from ui.sessions import SESSION_TTL_S, new_workdir, remove_workdir


def _summary(report: UploadReport) -> str:
    return "\n".join([
        f"### {report.display} ({report.runtime}, {report.bytes / 1e6:.2f} MB)",
        f"- input used: {report.input}",
        f"- output: {report.outputs} scores read as {report.output_kind}"
        + ("; output 0 is 'background'" if report.background else ""),
        f"- {report.stats.params / 1e6:.3f} M parameters, {report.stats.macs / 1e6:.1f} M multiply-adds"
        + (f", weights stored as {report.stats.stored_as}" if report.stats.weight_types else ""),
        "- inference: " + here_ms(report.latency, report.threads),
    ] + [f"- {note}" for note in report.notes] + (
        ["- derived variants are made for ONNX models only"] if report.runtime != "onnx" else []))


@request("your_model")
def run_upload(ctx: AppContext, model_path, labels_path, photo_path, height, width, channels, scaling, resize,
               output_kind, threads, previous_workdir, progress=gr.Progress()):
    if not model_path:
        raise gr.Error("Upload an .onnx or .tflite classifier first.", print_exception=False)
    if not photo_path:
        raise gr.Error("Upload a photo to run the model on (or click an example).", print_exception=False)
    remove_workdir(previous_workdir)
    workdir = new_workdir("mvl-upload-")
    try:
        form = Form(int(height), int(width), channels, scaling, resize, output_kind)
        # the server never loads an uploaded graph: a limited worker process does everything with it
        report = run_in_worker(Path(model_path), Path(labels_path) if labels_path else None, Path(photo_path),
                               form, workdir, int(threads), ctx.upload_limits,
                               progress=lambda done, total, what: progress(done / total, desc=what))
    except Exception:
        remove_workdir(workdir)  # nothing of theirs is left behind, whatever went wrong
        raise
    derived_rows = [
        [d.kind, "failed: " + d.error if d.error else "ok", round(d.size_mb, 2),
         ms_cell(d.latency, report.threads) if d.latency else "",
         round(d.agreement_pct, 1), round(d.cosine, 4)]
        for d in report.derived
    ]
    files = [str(d.path) for d in report.derived if d.path]
    layers = [list(row) for row in report.layers]
    curve = pd.DataFrame([{"depth": d, "SQNR dB": value, "measure": measure} for d, own, accumulated in report.layer_depths
                          for value, measure in ((own, "its own quantization"), (accumulated, "against your model"))],
                         columns=["depth", "SQNR dB", "measure"])
    note = (f"int8 static against your model: output SQNR **{report.layers_output_db:.1f} dB**, "
            f"{report.layers_note}." if report.layers_output_db is not None else report.layers_note)
    return (_summary(report), stats_rows(report.stats), dict(report.top), derived_rows, files or None, str(workdir),
            layers, curve, note)


def _form():
    with gr.Row():
        height = gr.Number(224, label="Input height", precision=0, minimum=8, maximum=2048)
        width = gr.Number(224, label="Input width", precision=0, minimum=8, maximum=2048)
    channels = gr.Radio(["RGB", "BGR"], value="RGB", label="Channel order")
    scaling = gr.Dropdown(list(SCALINGS), value=next(iter(SCALINGS)), label="Input scaling")
    resize = gr.Dropdown(list(RESIZES), value=next(iter(RESIZES)), label="Resize")
    output = gr.Radio(list(OUTPUT_KINDS), value="auto", label="Output",
                      info="auto: probabilities if they are non-negative and sum to 1")
    threads = threads_picker()
    return [height, width, channels, scaling, resize, output, threads]


def build(ctx: AppContext) -> None:
    gr.Markdown(
        f"Upload your own .onnx or .tflite image classifier (up to {MAX_MODEL_BYTES // 2**20} MB) with an "
        "optional labels file (one label per line) and say how its input is scaled. The app measures its "
        "graph, runs it on your photo, and for ONNX derives fp16, int8 dynamic and int8 static variants "
        "(calibrated on the bundled sample photos) for download. Your model stays in your session only: "
        "it is never added to the catalog, and its folder is deleted when you leave or upload another. "
        f"It runs in a separate worker process limited to {ctx.upload_limits.describe()}, at low priority: "
        "a model that needs more is stopped and you are told which limit it hit."
    )
    upload_dir = gr.State(None, delete_callback=remove_workdir, time_to_live=SESSION_TTL_S)
    with gr.Row():
        with gr.Column():
            model_file = gr.File(label="Model (.onnx or .tflite)", file_count="single", type="filepath",
                                 elem_id="upload-model")
            labels_file = gr.File(label="Labels (optional .txt)", file_count="single", type="filepath",
                                  elem_id="upload-labels")
            photo = gr.File(label="Photo", file_count="single", type="filepath", elem_id="upload-photo")
            examples = ctx.examples(EXAMPLE_PHOTOS)
            if examples:
                gr.Examples(examples, inputs=[photo], label="Example photos", cache_examples=False)
        with gr.Column():
            form = _form()
            run = gr.Button("Run my model", variant="primary", elem_id="upload-run")
            errors = error_box("upload-error")
    summary = gr.Markdown(elem_id="upload-summary")
    with gr.Row():
        labels = gr.Label(num_top_classes=5, label="Top-5 on your photo", elem_id="upload-labels-out")
        stats = gr.Dataframe(headers=STATS_HEADERS, label="Graph statistics", interactive=False, wrap=True,
                             column_widths=STATS_WIDTHS)
    derived = gr.Dataframe(
        headers=["variant", "status", "size MB", "inference ms here: warm median (p90)", "same top-1 as yours %",
                 "output cosine"],
        label="Derived variants (int8 static: calibrated on the 60 sample images, biases corrected; each compared "
              "with your model on those images and your photo)",
        interactive=False, wrap=True, elem_id="derived-table")
    downloads = gr.File(label="Download the derived files", file_count="multiple", interactive=False)
    with gr.Accordion("Where the int8 static variant loses, layer by layer", open=False):
        layer_note = gr.Markdown(elem_id="upload-layer-note")
        layer_plot = gr.LinePlot(x="depth", y="SQNR dB", color="measure", label="SQNR along the graph (0: input)",
                                 elem_id="upload-layer-plot")
        layer_table = gr.Dataframe(headers=["tensor", "op", "depth", "channels crushed %", "own SQNR dB",
                                            "SQNR against yours dB"], interactive=False, wrap=True,
                                   elem_id="upload-layer-table", elem_classes=["mvl-layer-table"])
    wire(run.click, bind(ctx, run_upload), [model_file, labels_file, photo] + form + [upload_dir],
         [summary, stats, labels, derived, downloads, upload_dir, layer_table, layer_plot, layer_note], errors,
         api_name="run_uploaded_model")
