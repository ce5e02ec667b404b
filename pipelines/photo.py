"""The Photo tab's work: ImageNet labels and scenes for one photo, each with its measured latency."""

from __future__ import annotations

from dataclasses import dataclass

from models.hub import LoadedModel, ModelHub
from pipelines.classification import Classification, Classifier, SceneRecognizer, SceneResult, load_model
from pipelines.object_detection import IOU_THRESHOLD, SCORE_THRESHOLD, ObjectDetections, ObjectDetector
from pipelines.photos import Photo
from pipelines.timing import LatencyReport, time_variant

THREAD_CHOICES = (1, 2, 4)
MAX_RUNS = 50


@dataclass(frozen=True)
class TaskResult:
    model: LoadedModel
    result: Classification | SceneResult | ObjectDetections
    latency: LatencyReport


@dataclass(frozen=True)
class PhotoAnalysis:
    photo: Photo
    imagenet: TaskResult
    scene: TaskResult
    objects: TaskResult | None = None


def _run_task(pipeline, model: LoadedModel, photo: Photo, threads: int, runs: int) -> TaskResult:
    result = pipeline(photo.image)
    latency = time_variant(lambda: pipeline(photo.image).timings, model.card.name, threads, runs=runs, warmup=2)
    return TaskResult(model, result, latency)


def analyse_photo(hub: ModelHub, photo: Photo, imagenet_card: str, scene_card: str, threads: int, runs: int,
                  object_card: str | None = None, score_threshold: float = SCORE_THRESHOLD,
                  iou_threshold: float = IOU_THRESHOLD) -> PhotoAnalysis:
    if threads not in THREAD_CHOICES:
        raise ValueError(f"threads must be one of {THREAD_CHOICES}, got {threads}")
    if not 1 <= runs <= MAX_RUNS:
        raise ValueError(f"runs must be between 1 and {MAX_RUNS}, got {runs}")
    catalog = hub.store.catalog
    if catalog[imagenet_card].task != "classification":
        raise ValueError(f"{imagenet_card} is not an ImageNet classifier")
    if catalog[scene_card].task != "scene":
        raise ValueError(f"{scene_card} is not a scene model")
    if object_card is not None and catalog[object_card].task != "object_detection":
        raise ValueError(f"{object_card} is not an object detector")
    if not (0.0 <= score_threshold <= 1.0 and 0.0 < iou_threshold <= 1.0):
        raise ValueError("the score threshold must be in 0..1 and the IoU threshold in (0, 1]")
    imagenet_model = load_model(hub, imagenet_card, threads)
    scene_model = load_model(hub, scene_card, threads)
    objects = None
    if object_card is not None:
        object_model = load_model(hub, object_card, threads)
        detector = ObjectDetector(object_model)
        objects = _run_task(lambda image: detector(image, score_threshold, iou_threshold), object_model, photo,
                            threads, runs)
    return PhotoAnalysis(
        photo=photo,
        imagenet=_run_task(Classifier(imagenet_model), imagenet_model, photo, threads, runs),
        scene=_run_task(SceneRecognizer(scene_model), scene_model, photo, threads, runs),
        objects=objects,
    )
