"""Named photo sets that int8 static recipes calibrate on, available wherever the app is installed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from models.catalog import ModelCard
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


CALIBRATION_SETS = ("skimage_samples", "skimage_lfw_faces")


def calibration_photos(name: str) -> list[Image.Image]:
    if name == "skimage_lfw_faces":
        return _lfw_faces()
    if name != "skimage_samples":
        raise ValueError(f"unknown calibration photo set {name!r}; known: {', '.join(CALIBRATION_SETS)}")
    photos = []
    for path in sample_photo_paths():
        with Image.open(path) as image:
            photos += _augmented(image.convert("RGB"))
    return photos


def calibration_inputs(card: ModelCard) -> Callable[[], list[np.ndarray]]:
    """What the store calls, only when it must derive the card's int8 static file."""

    def inputs() -> list[np.ndarray]:
        return [to_input_tensor(photo, card.input) for photo in calibration_photos(card.recipe.calibration)]

    return inputs
