"""Every event handler wears `request`: domain errors become a message for the person, and one JSON line is
logged per request (task, models, milliseconds, outcome), never photo content, file names or face data."""

from __future__ import annotations

import functools
import json
import logging
import time

import gradio as gr

from models.backends import BackendError
from models.store import StoreError
from pipelines.album.ingest import AlbumError
from pipelines.common.photos import PhotoError
from pipelines.faces.errors import FaceError
from pipelines.lab.custom_model import CustomModelError

REQUEST_LOG = logging.getLogger("mvl.requests")

# What a request can be refused for: the person sees the message, the app keeps serving.
USER_ERRORS = (PhotoError, FaceError, AlbumError, CustomModelError, StoreError, BackendError, KeyError, ValueError)


def sentence(exc: Exception | str) -> str:
    """An error's message as one sentence for the person: quotes stripped, one final period."""
    text = str(exc).strip().strip("'\"")
    return text if text.endswith((".", "?", "!")) else text + "."


def user_error(exc: Exception) -> gr.Error:
    if isinstance(exc, PhotoError):
        return gr.Error(f"This photo cannot be used: {sentence(exc)}")
    if isinstance(exc, StoreError):
        return gr.Error(f"The model could not be loaded: {sentence(exc.person)}")
    if isinstance(exc, BackendError):
        return gr.Error(f"The model could not be loaded: {sentence(exc)}")
    return gr.Error(sentence(exc))


def request(task: str):
    """Wrap a handler whose first argument is the AppContext; the models named in its other arguments
    (only names the catalog knows) are logged."""

    def wrap(handler):
        @functools.wraps(handler)
        def run(ctx, *args, **kwargs):
            start = time.perf_counter()
            outcome = "ok"
            try:
                return handler(ctx, *args, **kwargs)
            except gr.Error:
                outcome = "refused"
                raise
            except USER_ERRORS as exc:
                outcome = "refused"
                raise user_error(exc) from None
            except Exception as exc:
                outcome = f"failed: {type(exc).__name__}"
                raise
            finally:
                REQUEST_LOG.info(json.dumps({
                    "task": task, "models": [a for a in args if isinstance(a, str) and a in ctx.names],
                    "ms": round(1000 * (time.perf_counter() - start), 1), "outcome": outcome,
                }))
        return run

    return wrap


def bind(ctx, handler):
    """The handler with the context bound, as Gradio calls it (the signature stays inspectable)."""
    return functools.partial(handler, ctx)
