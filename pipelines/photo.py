"""The Photo tab's work: ImageNet labels and scenes for one photo, each with its measured latency."""

from __future__ import annotations

from dataclasses import dataclass

from models.hub import LoadedModel, ModelHub
from pipelines.classification import Classification, Classifier, SceneRecognizer, SceneResult, load_model
from pipelines.photos import Photo
from pipelines.timing import LatencyReport, time_variant

THREAD_CHOICES = (1, 2, 4)
MAX_RUNS = 50


@dataclass(frozen=True)
class TaskResult:
    model: LoadedModel
    result: Classification | SceneResult
    latency: LatencyReport


@dataclass(frozen=True)
class PhotoAnalysis:
    photo: Photo
    imagenet: TaskResult
    scene: TaskResult


def _run_task(pipeline: Classifier, model: LoadedModel, photo: Photo, threads: int, runs: int) -> TaskResult:
    result = pipeline(photo.image)
    latency = time_variant(lambda: pipeline(photo.image).timings, model.card.name, threads, runs=runs, warmup=2)
    return TaskResult(model, result, latency)


def analyse_photo(hub: ModelHub, photo: Photo, imagenet_card: str, scene_card: str, threads: int, runs: int) -> PhotoAnalysis:
    if threads not in THREAD_CHOICES:
        raise ValueError(f"threads must be one of {THREAD_CHOICES}, got {threads}")
    if not 1 <= runs <= MAX_RUNS:
        raise ValueError(f"runs must be between 1 and {MAX_RUNS}, got {runs}")
    catalog = hub.store.catalog
    if catalog[imagenet_card].task != "classification":
        raise ValueError(f"{imagenet_card} is not an ImageNet classifier")
    if catalog[scene_card].task != "scene":
        raise ValueError(f"{scene_card} is not a scene model")
    imagenet_model = load_model(hub, imagenet_card, threads)
    scene_model = load_model(hub, scene_card, threads)
    return PhotoAnalysis(
        photo=photo,
        imagenet=_run_task(Classifier(imagenet_model), imagenet_model, photo, threads, runs),
        scene=_run_task(SceneRecognizer(scene_model), scene_model, photo, threads, runs),
    )
