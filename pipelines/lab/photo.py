"""The Photo tab's work: ImageNet labels, scenes and objects for one photo, each with its measured latency."""

from __future__ import annotations

from dataclasses import dataclass

from models.catalog import Catalog
from models.hub import LoadedModel, ModelHub
from pipelines.common.photos import Photo
from pipelines.common.timing import LatencyReport, time_variant
from pipelines.vision.classification import (
    Classification,
    Classifier,
    SceneRecognizer,
    SceneResult,
)
from pipelines.vision.objects import (
    IOU_THRESHOLD,
    SCORE_THRESHOLD,
    ObjectDetections,
    ObjectDetector,
)

THREAD_CHOICES = (1, 2, 4)
MAX_RUNS = 50
WARMUP_RUNS = 2


@dataclass(frozen=True)
class PhotoOptions:
    """What a person chose on the Photo tab; checked once, here."""

    imagenet_card: str
    scene_card: str
    threads: int = 1
    runs: int = 10
    object_card: str | None = None
    score_threshold: float = SCORE_THRESHOLD
    iou_threshold: float = IOU_THRESHOLD

    def check(self, catalog: Catalog) -> PhotoOptions:
        """The options if they are usable with this catalog; ValueError naming the first that is not."""
        if self.threads not in THREAD_CHOICES:
            raise ValueError(f"threads must be one of {THREAD_CHOICES}, got {self.threads}")
        if not 1 <= self.runs <= MAX_RUNS:
            raise ValueError(f"runs must be between 1 and {MAX_RUNS}, got {self.runs}")
        for name, task, what in ((self.imagenet_card, "classification", "an ImageNet classifier"),
                                 (self.scene_card, "scene", "a scene model"),
                                 (self.object_card, "object_detection", "an object detector")):
            if name is not None and catalog[name].task != task:
                raise ValueError(f"{name} is not {what}")
        if not (0.0 <= self.score_threshold <= 1.0 and 0.0 < self.iou_threshold <= 1.0):
            raise ValueError("the score threshold must be in 0..1 and the IoU threshold in (0, 1]")
        return self


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
    latency = time_variant(lambda: pipeline(photo.image).timings, model.card.name, threads, runs=runs,
                           warmup=WARMUP_RUNS)
    return TaskResult(model, result, latency)


def analyse_photo(hub: ModelHub, photo: Photo, options: PhotoOptions) -> PhotoAnalysis:
    options = options.check(hub.store.catalog)
    threads, runs = options.threads, options.runs
    imagenet_model = hub.load(options.imagenet_card, threads)
    scene_model = hub.load(options.scene_card, threads)
    objects = None
    if options.object_card is not None:
        object_model = hub.load(options.object_card, threads)
        detector = ObjectDetector(object_model)
        objects = _run_task(lambda image: detector(image, options.score_threshold, options.iou_threshold),
                            object_model, photo, threads, runs)
    return PhotoAnalysis(
        photo=photo,
        imagenet=_run_task(Classifier(imagenet_model), imagenet_model, photo, threads, runs),
        scene=_run_task(SceneRecognizer(scene_model), scene_model, photo, threads, runs),
        objects=objects,
    )
