"""Named photo sets that int8 static recipes calibrate on, and the photos a derived variant is checked on.

skimage_samples and skimage_lfw_faces ship with scikit-image, so they are wherever the app is installed.
The task-like sets come from the labeled photos (pipelines/common/eval_sets.py), each from photos the
task's own figures are never reported on: detectors and classifiers calibrate on MiniPlaces scenes (their
figures: COCO and ImageNet), the scene model on COCO and ImageNet photos (its figures: MiniPlaces). Each pool
is ordered by a hash of the file names; its first CALIBRATION_PHOTOS calibrate, the next CHECK_PHOTOS are
held out to check a variant against its parent (never used to calibrate); a recipe that fine-tunes learns on the
rest of a pool (models/fine_tune.py). Where the photos are not on a server, a variant calibrated or fine-tuned on
them is available only if its file is (a Space bundles it)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from models.catalog import ModelCard
from pipelines.common.eval_sets import eval_dir
from pipelines.common.preprocess import to_input_tensor

# Colour photos bundled with scikit-image (its data folder; no download).
SKIMAGE_SAMPLES = (
    "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
    "motorcycle_right.png", "hubble_deep_field.jpg", "retina.jpg", "ihc.png", "color.png",
)


def sample_photo_paths() -> tuple[Path, ...]:
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    return tuple(folder / name for name in SKIMAGE_SAMPLES if (folder / name).is_file())


def _augmented(image: Image.Image) -> list[Image.Image]:
    """The photo, its mirror, and its four corner crops: more activation statistics from few photos."""
    width, height = image.size
    w, h = int(width * 0.7), int(height * 0.7)
    corners = [(0, 0), (width - w, 0), (0, height - h), (width - w, height - h)]
    return [image, image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)] + [
        image.crop((x, y, x + w, y + h)) for x, y in corners
    ]


def _lfw_faces() -> list[Image.Image]:
    """The 100 face images of scikit-image's bundled LFW subset (25x25 grey, roughly aligned), as RGB."""
    import skimage

    faces = np.load(Path(skimage.__file__).parent / "data" / "lfw_subset.npy")[:100]  # the rest are non-faces
    return [Image.fromarray(np.rint(face * 255).astype(np.uint8)).convert("RGB") for face in faces]


CALIBRATION_PHOTOS, CHECK_PHOTOS = 128, 200
POOLS = {"miniplaces": ("places_miniplaces",), "coco_imagenet": ("coco", "imagenet_val1300")}
SHIPPED_SETS = ("skimage_samples", "skimage_lfw_faces")  # installed with scikit-image, wherever the app is
CALIBRATION_SETS = (*SHIPPED_SETS, *POOLS)
# Where a variant calibrated on the sample photos is checked: a pool its task's figures are never reported on
# (scene models are measured on MiniPlaces, the other tasks on COCO and ImageNet photos); the bundled faces
# have no such pool; a pool's own variants are checked on its next photos.
SAMPLES_CHECK_POOL = {"scene": "coco_imagenet"}  # other tasks: miniplaces
NO_CHECK_POOL = ("skimage_lfw_faces",)


class CalibrationPhotosMissing(ValueError):
    """The labeled photos a calibration set is drawn from are not on this machine."""


def _pool(name: str) -> list[Path]:
    root = eval_dir()
    folders = [root / sub / "images" for sub in POOLS[name]]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        raise CalibrationPhotosMissing(f"the calibration photos '{name}' are not here ({', '.join(missing)})")
    paths = [p for folder in folders for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    return sorted(paths, key=lambda p: hashlib.sha256(f"{p.parent.parent.name}/{p.name}".encode()).hexdigest())


def calibration_available(name: str) -> bool:
    if name in POOLS:
        try:
            return len(_pool(name)) >= CALIBRATION_PHOTOS
        except CalibrationPhotosMissing:
            return False
    return name in CALIBRATION_SETS


def open_photos(paths: list[Path]) -> list[Image.Image]:
    """Photo files as RGB images, each file closed once read."""
    photos = []
    for path in paths:
        with Image.open(path) as image:
            photos.append(image.convert("RGB"))
    return photos


def pool_calibration_paths(name: str) -> list[Path]:
    """The photos a task-like set calibrates on (the first of its pool)."""
    return _pool(name)[:CALIBRATION_PHOTOS]


def calibration_photos(name: str) -> list[Image.Image]:
    if name == "skimage_lfw_faces":
        return _lfw_faces()
    if name in POOLS:
        return open_photos(pool_calibration_paths(name))
    if name != "skimage_samples":
        raise ValueError(f"unknown calibration photo set {name!r}; known: {', '.join(CALIBRATION_SETS)}")
    photos = []
    for path in sample_photo_paths():
        with Image.open(path) as image:
            photos += _augmented(image.convert("RGB"))
    return photos


def has_check_photos(calibration: str) -> bool:
    """Whether a variant calibrated on this set has held-out photos to be checked on, in principle (the faces
    bundled with scikit-image have none)."""
    return calibration not in NO_CHECK_POOL


def check_photo_paths(calibration: str, task: str) -> list[Path]:
    """Photos to compare a variant of a `task` model calibrated on `calibration` with its parent: never
    calibrated on, never the photos its task's figures are reported on."""
    if not has_check_photos(calibration):
        raise ValueError(f"no held-out photos to check a variant calibrated on {calibration}")
    pool = SAMPLES_CHECK_POOL.get(task, "miniplaces") if calibration in SHIPPED_SETS else calibration
    return _pool(pool)[CALIBRATION_PHOTOS:CALIBRATION_PHOTOS + CHECK_PHOTOS]


def fine_tuning_paths(name: str) -> list[Path]:
    """The photos a recipe fine-tunes on: a pool's, except the ones held out to check variants against parents."""
    if name not in POOLS:
        raise ValueError(f"unknown fine-tuning photo set {name!r}; known: {', '.join(POOLS)}")
    pool = _pool(name)
    return pool[:CALIBRATION_PHOTOS] + pool[CALIBRATION_PHOTOS + CHECK_PHOTOS:]


def random_view(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A random crop of 35-100 % of the photo's area, aspect ratio 3:4 to 4:3, mirrored half the time."""
    width, height = image.size
    area, aspect = rng.uniform(0.35, 1.0), np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    w = min(width, max(1, round(width * np.sqrt(area * aspect))))
    h = min(height, max(1, round(height * np.sqrt(area / aspect))))
    x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
    view = image.crop((x, y, x + w, y + h))
    return view.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else view


class CardCalibration:
    """What the store calls, only when it must derive the card's int8 static file: the calibration inputs, and
    for a recipe that fine-tunes, batches of random views of its fine-tuning photos (read once, when first drawn)."""

    def __init__(self, card: ModelCard):
        self.card = card
        self._photos: list[Image.Image] | None = None

    def __call__(self) -> list[np.ndarray]:
        return [to_input_tensor(photo, self.card.input) for photo in calibration_photos(self.card.recipe.calibration)]

    def batch(self, rng: np.random.Generator, size: int) -> np.ndarray:
        if self._photos is None:
            if not self.card.recipe.fine_tune:
                raise ValueError(f"{self.card.name} is not fine-tuned")
            self._photos = open_photos(fine_tuning_paths(self.card.recipe.fine_tune))
        picks = rng.integers(0, len(self._photos), size)
        return np.concatenate([to_input_tensor(random_view(self._photos[i], rng), self.card.input) for i in picks])


def calibration_inputs(card: ModelCard) -> CardCalibration:
    return CardCalibration(card)
