"""The model-and-precision picker every tab uses: a model, then one of its variants."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from models.catalog import Catalog

UNAVAILABLE = "unavailable here"


def variant_label(ctx, card) -> str:
    """A variant as offered: its precision, what it loses where it is lossy (measured), or why it cannot be
    had here."""
    from ui.format import loss_note

    if not ctx.available(card.name):
        return f"{card.short_variant} ({UNAVAILABLE}: {ctx.why_unavailable(card.name)})"
    lossy = loss_note(card, ctx.evaluations)
    return f"{card.short_variant} ({lossy})" if lossy else card.short_variant


def variant_choices(ctx, task: str, display: str) -> list[tuple[str, str]]:
    """(label, card name) of a model's variants."""
    return [(variant_label(ctx, card), card.name) for card in ctx.catalog.variants(task, display)]


def model_choices(ctx, task: str) -> list[tuple[str, str]]:
    """(label, display name) of a task's models; a model none of whose variants can be had is marked."""
    catalog: Catalog = ctx.catalog
    choices = []
    for display in catalog.displays(task):
        names = [c.name for c in catalog.variants(task, display)] if task != "face_detection" else [display]
        choices.append((display if any(ctx.available(n) for n in names) else f"{display} ({UNAVAILABLE})", display))
    return choices


@dataclass(frozen=True)
class ModelPicker:
    model: gr.Dropdown  # the model's display name
    card: gr.Dropdown  # the chosen variant's card name: what handlers take


def model_picker(ctx, task: str, label: str, default: str | None = None) -> ModelPicker:
    """Two dropdowns; changing the model offers its variants, the first that can be had selected. API callers
    may name any card in the second (the pipelines check it)."""
    card = ctx.catalog[default or ctx.default(task)]
    model = gr.Dropdown(model_choices(ctx, task), value=card.display, label=label)
    variant = gr.Dropdown(variant_choices(ctx, task, card.display), value=card.name, label="Precision",
                          allow_custom_value=True)

    def on_model(display):
        choices = variant_choices(ctx, task, display)
        usable = [name for _, name in choices if ctx.available(name)] or [choices[0][1]]
        return gr.Dropdown(choices=choices, value=usable[0])

    model.change(on_model, model, variant, api_visibility="private")
    return ModelPicker(model, variant)


def threads_picker() -> gr.Radio:
    """The CPU threads a request may use: the same choices, type and wording on every tab and endpoint."""
    import os

    from pipelines.lab.photo import THREAD_CHOICES

    return gr.Radio(list(THREAD_CHOICES), value=1, label="CPU threads",
                    info=f"this machine has {os.cpu_count()} cores: more threads than cores oversubscribe")
