"""The page: the tabs put together, with the queue's limits. Models load on first use, not here."""

from __future__ import annotations

import os

import gradio as gr

from models.store import ModelStore
from pipelines.common.photos import MAX_FILE_BYTES
from pipelines.faces.gallery import Gallery
from ui import album_tab, faces_tab, models_tab, photo_tab, your_model_tab
from ui.context import AppContext
from ui.gradio_cache import atomic_cache_writes
from ui.sessions import remove_stale_temp

QUEUE_SIZE = 32
CONCURRENCY = 2  # requests run at once per event (the machine has 2 cores); the album tab runs one at a time


def build_app(store: ModelStore | None = None) -> gr.Blocks:
    ctx = AppContext.create(store)
    remove_stale_temp()
    atomic_cache_writes()
    with gr.Blocks(title="Mobile Vision Lab", delete_cache=(300, 900)) as demo:
        face_gallery = gr.State(Gallery())  # this session's enrolled faces, used by the Photo and Faces tabs
        gr.Markdown(
            "# Mobile Vision Lab\nThe model files a phone runs (TFLite through LiteRT, ONNX through ONNX Runtime), "
            "run here on your photo. Host latency is measured on this machine "
            f"({os.cpu_count()} CPU cores); phone latency is as published, with its source. Busy times: "
            f"{CONCURRENCY} requests run at once and {QUEUE_SIZE} wait; past that you are asked to try again. Uploads "
            f"up to {MAX_FILE_BYTES // 2**20} MB a file. Nothing you upload is kept after your session or sent anywhere."
        )
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
