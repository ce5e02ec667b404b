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
    """The person's message; not printed as a traceback (the request's log line says it was refused)."""
    if isinstance(exc, PhotoError):
        message = f"This photo cannot be used: {sentence(exc)}"
    elif isinstance(exc, StoreError):
        message = f"The model could not be loaded: {sentence(exc.person)}"
    elif isinstance(exc, BackendError):
        message = f"The model could not be loaded: {sentence(exc)}"
    else:
        message = sentence(exc)
    return gr.Error(message, print_exception=False)


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


def error_box(elem_id: str) -> gr.Markdown:
    """Where a tab's refusals are shown, next to what was refused, until the next action."""
    return gr.Markdown(elem_id=elem_id, elem_classes=["mvl-error"], visible=False)


def _in_place(handler, outputs: int):
    """The handler for the page: a refusal clears the results it would have replaced (they belonged to other
    inputs) and is shown in the error box; a success clears the box."""

    @functools.wraps(handler)
    def run(*args, **kwargs):
        try:
            result = handler(*args, **kwargs)
        except gr.Error as exc:
            return (*[None] * outputs, gr.Markdown(f"**Could not do that.** {exc.message}", visible=True))
        result = result if isinstance(result, tuple) else (result,) if outputs == 1 else tuple(result)
        return (*result, gr.Markdown("", visible=False))

    return run


def wire(trigger, handler, inputs, outputs, errors: gr.Markdown, api_name: str | None = None, **options):
    """One action (an event listener such as button.click, or a list of them): on the page, refusals shown in
    place (`errors`); for API callers (api_name) the same handler on an endpoint of its own, refusing with an
    error as API clients expect."""
    shown = _in_place(handler, len(outputs))
    if isinstance(trigger, list):
        event = gr.on(trigger, shown, inputs, outputs + [errors], api_visibility="private", **options)
    else:
        event = trigger(shown, inputs, outputs + [errors], api_visibility="private", **options)
    if api_name:
        endpoint = gr.Button(visible=False, elem_classes=["mvl-api"])  # never shown or clicked: the API's entry
        endpoint.click(handler, inputs, outputs, api_name=api_name, **options)
    return event
