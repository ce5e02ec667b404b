"""Figures for the screens (no gradio): the accuracy-latency plot, the profile chart, landmarks on a photo."""

from __future__ import annotations

from pipelines.lab.precision import PlotPoint, pareto_front
from ui.format import TASK_TITLES


def accuracy_latency_figure(points: list[PlotPoint], task: str, axis: str):
    from matplotlib.figure import (
        Figure,  # no pyplot: no global state shared between requests
    )

    figure = Figure(figsize=(9, 5.5), layout="constrained")
    ax = figure.add_subplot()
    if points:
        ax.scatter([p.latency_ms for p in points], [p.accuracy_pct for p in points],
                   s=[40 + 30 * p.size_mb for p in points], alpha=0.55, edgecolors="black", linewidths=0.6)
        for p in points:
            ax.annotate(p.label, (p.latency_ms, p.accuracy_pct), textcoords="offset points", xytext=(6, 4), fontsize=8)
        front = pareto_front(points)
        ax.plot([p.latency_ms for p in front], [p.accuracy_pct for p in front], "--", color="tab:red",
                label="Pareto front (faster and more accurate than the rest)")
        ax.legend(loc="lower right", fontsize=8)
        if max(p.latency_ms for p in points) / max(min(p.latency_ms for p in points), 1e-3) > 20:
            ax.set_xscale("log")
    ax.set_xlabel(f"latency, ms ({axis})")
    ax.set_ylabel("top-1 accuracy, % (labeled eval photos)")
    ax.set_title(f"{TASK_TITLES[task]}: accuracy against latency (marker area: file size)")
    ax.grid(alpha=0.3)
    return figure


def profile_figure(profile, title: str):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.2), layout="constrained")
    ax = figure.add_subplot()
    entries = list(profile.entries)[::-1]
    ax.barh([f"{e.category} ({e.group})" for e in entries], [len(e.photos) for e in entries], color="tab:blue")
    ax.set_xlabel("photos")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return figure


def draw_landmarks(image, faces):
    """The photo with each face's landmarks as dots (the boxes are drawn by AnnotatedImage)."""
    from PIL import ImageDraw

    image = image.copy()
    draw = ImageDraw.Draw(image)
    radius = max(2, round(max(image.size) / 300))
    for face in faces:
        for (x, y), present in zip(face.landmarks, face.landmarks_present):
            if present:
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(255, 40, 40), outline=(255, 255, 255))
    return image
