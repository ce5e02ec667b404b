"""The page: the tabs put together, with the queue's limits. Models load on first use, not here."""

from __future__ import annotations

import os

import gradio as gr

from models.store import ModelStore
from pipelines.album.ingest import MAX_ALBUM_FILE_BYTES
from pipelines.common.photos import MAX_FILE_BYTES
from pipelines.lab.custom_model import MAX_MODEL_BYTES
from pipelines.faces.gallery import Gallery
from ui import album_tab, faces_tab, models_tab, photo_tab, your_model_tab
from ui.context import AppContext
from ui.gradio_cache import atomic_cache_writes
from ui.sessions import remove_stale_temp

# On a phone every table column keeps a readable width and the table scrolls sideways inside its own box: gradio
# would otherwise fit all columns into the screen, a few letters per line ("Outd/oors", "m/s/h/e/r/e").
PHONE_MIN_COLUMN_PX = 84
PHONE_WIDE_COLUMNS = {  # a table (elem_id or class) -> {column number (from 1): min width px} for its long texts
    "#model-table": {1: 120, 4: 130, 5: 180},
    "#profile-table": {1: 110, 2: 100, 6: 220},
    "#events-table": {2: 120, 3: 200, 5: 160, 6: 140},
    "#comparison": {2: 110, 5: 200},
    "#derived-table": {1: 110, 2: 180},
    ".mvl-phone-table": {1: 120, 2: 120, 4: 100, 5: 100, 7: 180, 8: 200},
    ".mvl-host-table": {2: 120, 3: 100, 5: 100},
    ".mvl-layer-table": {1: 200},
    ".mvl-architecture-table": {1: 120},
}


def _phone_columns_css() -> str:
    cell = ":is(th, td, .body-cell)"  # header cells, the rows gradio measures, the rows it shows
    rules = [f".table-wrap {cell} {{ min-width: {PHONE_MIN_COLUMN_PX}px !important; }}"]
    for table, columns in PHONE_WIDE_COLUMNS.items():
        rules += [f"{table} {cell}:nth-child({n}) {{ min-width: {px}px !important; }}" for n, px in columns.items()]
    return "@media (max-width: 640px) {\n  " + "\n  ".join(rules) + "\n}\n"


# Refusals stand out where they happen; the summary reads as one line per task; hidden API entry points.
CSS = """
.mvl-error { border: 2px solid #c62828; border-radius: 8px; padding: 6px 10px; background: #fdecea; }
.mvl-summary .mvl-line { padding: 4px 0; border-bottom: 1px solid #e5e7eb; line-height: 1.45; }
.mvl-summary .mvl-line small { color: #6b7280; }
@media (max-width: 640px) { #intro h1 { font-size: 1.3em; margin: 0; } }
""" + _phone_columns_css()
QUEUE_SIZE = 32
CONCURRENCY = 2  # requests run at once per event (the machine has 2 cores); the album tab runs one at a time


def build_app(store: ModelStore | None = None) -> gr.Blocks:
    ctx = AppContext.create(store)
    remove_stale_temp()
    atomic_cache_writes()
    with gr.Blocks(title="Mobile Vision Lab", delete_cache=(300, 900)) as demo:
        face_gallery = gr.State(Gallery())  # this session's enrolled faces, used by the Photo and Faces tabs
        gr.Markdown("# Mobile Vision Lab\nThe model files a phone runs, run here on your photo: latency here "
                    f"({os.cpu_count()} cores) next to what phones were published to take. Nothing you upload is "
                    "kept after your session or sent anywhere.", elem_id="intro")
        with gr.Accordion("About this server", open=False):
            gr.Markdown(
                "TFLite files run through LiteRT, ONNX files through ONNX Runtime, on this machine's CPU. Host "
                "latency: warm runs, median and p90, threads as chosen. Phone latency: published figures of the "
                f"same file or weights at the same precision, with their source, never measured here. Busy times: "
                f"{CONCURRENCY} requests run at once and {QUEUE_SIZE} wait; past that you are asked to try again. "
                f"Uploads: a photo up to {MAX_FILE_BYTES // 2**20} MB, a model up to {MAX_MODEL_BYTES // 2**20} MB, "
                f"an album file up to {MAX_ALBUM_FILE_BYTES // 2**30} GB.")
        with gr.Tab("Photo"):
            photo_tab.build(ctx, face_gallery)
        with gr.Tab("Faces"):
            faces_tab.build(ctx, face_gallery)
        with gr.Tab("Album"):
            album_tab.build(ctx)
        with gr.Tab("Models"):
            models_tab.build(ctx)
        with gr.Tab("Your model"):
            your_model_tab.build(ctx)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    demo.mvl_store = ctx.hub.store  # for serve(): the health route reads it
    return demo
