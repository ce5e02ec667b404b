"""Serving: the upload limit, the health route, and the startup report of where model files come from."""

from __future__ import annotations

import signal
import sys

import gradio as gr

from models.store import ModelStore, StoreError
from pipelines.album.ingest import MAX_ALBUM_FILE_BYTES
from pipelines.common.photos import MAX_FILE_BYTES
from pipelines.lab.custom_model import MAX_MODEL_BYTES

# Gradio refuses a larger body before the app reads it; each tab then holds its own kind to its own limit.
UPLOAD_LIMIT = max(MAX_FILE_BYTES, MAX_MODEL_BYTES, MAX_ALBUM_FILE_BYTES)


def health(store: ModelStore) -> dict:
    """What a Space or a load balancer polls: cheap (no hashing, no model load). "ok" only when every card
    can be had; "degraded" names the cards that cannot and what each task loses."""
    catalog = store.catalog
    missing = [card.file for card in catalog
               if not card.is_derived and not any(path.is_file() for path in store.local_paths(card))]
    unavailable = {card.name: availability.how for card in catalog
                   if not (availability := store.availability(card)).available}
    losses = {}
    for task in dict.fromkeys(card.task for card in catalog):
        cards = catalog.for_task(task)
        lost = [card.name for card in cards if card.name in unavailable]
        if lost:
            losses[task] = f"{len(lost)} of {len(cards)} cards unavailable: {', '.join(lost)}"
    return {"status": "degraded" if unavailable else "ok", "cards": len(catalog.cards),
            "missing_model_files": missing, "unavailable": unavailable, "tasks_losing": losses}


def report_model_files(store: ModelStore, out=sys.stdout) -> None:
    """At startup: where each model file comes from (local folder, cache, download) and how long it took."""
    print("Model files (derived fp16/int8 variants are made on first use):", file=out)
    for card in store.catalog:
        if card.is_derived:
            continue
        try:
            resolved = store.resolve(card)
            print(f"  {card.name:42s} {resolved.origin:13s} {resolved.seconds:6.2f} s  {resolved.path}", file=out)
        except StoreError as exc:
            print(f"  {card.name:42s} UNAVAILABLE: {exc}", file=out)


def serve(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = None, block: bool = True, **launch_kwargs):
    """Launch with the upload limit and the health route; blocks unless told not to."""
    from fastapi.responses import JSONResponse

    from ui.blocks import CSS

    server, url, _ = demo.launch(server_name=host, server_port=port, prevent_thread_lock=True, css=CSS,
                                 max_file_size=UPLOAD_LIMIT, **launch_kwargs)
    server.add_api_route("/healthz", lambda: JSONResponse(health(demo.mvl_store)), methods=["GET"])
    if block:
        # a stop (a Space's container, a service manager) sends SIGTERM: closed as on Ctrl-C, so the process
        # exits normally and the open sessions' folders go with it (ui/sessions.py)
        signal.signal(signal.SIGTERM, _interrupt)
        demo.block_thread()
    return url


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
