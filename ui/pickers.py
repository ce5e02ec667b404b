"""The model-and-precision picker every tab uses: a model, then one of its variants."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from models.catalog import Catalog


def variant_choices(catalog: Catalog, task: str, display: str) -> list[tuple[str, str]]:
    return [(card.variant, card.name) for card in catalog.variants(task, display)]


@dataclass(frozen=True)
class ModelPicker:
    model: gr.Dropdown  # the model's display name
    card: gr.Dropdown  # the chosen variant's card name: what handlers take


def model_picker(catalog: Catalog, task: str, label: str, default: str | None = None) -> ModelPicker:
    """Two dropdowns; changing the model offers its variants, the first selected. API callers may name any
    card in the second (the pipelines check it)."""
    card = catalog[default or catalog.default(task)]
    model = gr.Dropdown(list(catalog.displays(task)), value=card.display, label=label)
    variant = gr.Dropdown(variant_choices(catalog, task, card.display), value=card.name, label="Precision",
                          allow_custom_value=True)

    def on_model(display):
        choices = variant_choices(catalog, task, display)
        return gr.Dropdown(choices=choices, value=choices[0][1])

    model.change(on_model, model, variant, api_visibility="private")
    return ModelPicker(model, variant)
