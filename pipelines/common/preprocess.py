"""The input tensor a card declares, made from an upright RGB photo."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from models.catalog import InputContract


def resize_and_crop(image: Image.Image, contract: InputContract) -> Image.Image:
    """Shorter side to size / crop_fraction (bilinear), then the centre size x size; or a plain stretch
    (also for an already aligned face, which only needs the input's size)."""
    if contract.resize in ("letterbox", "pyramid"):
        raise ValueError(f"a {contract.resize} input is made by its detector, not by resize_and_crop")
    if contract.resize in ("stretch", "aligned"):
        return image.resize((contract.width, contract.height), Image.Resampling.BILINEAR)
    width, height = image.size
    target_short = max(contract.height, contract.width) / contract.crop_fraction
    scale = target_short / min(width, height)
    new_w = max(contract.width, round(width * scale))
    new_h = max(contract.height, round(height * scale))
    resized = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left = (new_w - contract.width) // 2
    top = (new_h - contract.height) // 2
    return resized.crop((left, top, left + contract.width, top + contract.height))


@dataclass(frozen=True)
class Letterbox:
    """Where the photo sits inside the model's input: input pixel = photo pixel * scale + offset."""

    scale: float
    offset_x: float
    offset_y: float

    def to_photo(self, xy: np.ndarray) -> np.ndarray:
        """Input-pixel coordinates (..., 2) back to photo pixels."""
        return (xy - np.array([self.offset_x, self.offset_y])) / self.scale


def letterbox(image: Image.Image, contract: InputContract) -> tuple[np.ndarray, Letterbox]:
    """The whole photo fitted into the input, aspect kept, centred or at the top-left corner; padded with the
    card's pad value, or the mean (0 after scaling)."""
    width, height = image.size
    scale = min(contract.width / width, contract.height / height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    canvas = np.empty((contract.height, contract.width, 3), np.float32)
    if contract.pad is None:
        fill = np.asarray(contract.mean, np.float32)
        canvas[:] = fill[::-1] if contract.channels == "BGR" else fill  # canvas is RGB until to_tensor
    else:
        canvas[:] = contract.pad
    if contract.align == "top_left":
        left = top = 0
    else:
        left, top = (contract.width - new_w) // 2, (contract.height - new_h) // 2
    canvas[top:top + new_h, left:left + new_w] = np.asarray(image.resize((new_w, new_h), Image.Resampling.BILINEAR),
                                                            np.float32)
    return canvas, Letterbox(scale, left, top)


def to_tensor(pixels: np.ndarray, contract: InputContract) -> np.ndarray:
    """RGB pixels [H, W, 3] or a batch [N, H, W, 3] (any dtype) -> the card's float32 batch."""
    batch = np.asarray(pixels)
    if batch.ndim == 3:
        batch = batch[None]
    mean, std = np.asarray(contract.mean, np.float32), np.asarray(contract.std, np.float32)
    if contract.channels == "BGR":  # mean and std are given in the card's channel order
        batch = batch[..., ::-1]
    if contract.transposed:
        batch = batch.transpose(0, 2, 1, 3)
    if contract.layout == "NCHW":
        batch = batch.transpose(0, 3, 1, 2)
        mean, std = mean[:, None, None], std[:, None, None]
    # the layout moves on the source pixels; one float copy, then the scaling in place
    tensor = np.ascontiguousarray(batch, dtype=np.float32)
    tensor -= mean
    tensor /= std
    return tensor


def to_input_tensor(image: Image.Image, contract: InputContract) -> np.ndarray:
    """float32 batch of one, real-valued: (pixel - mean) / std in the card's channel order and layout."""
    if contract.resize == "letterbox":
        return to_tensor(letterbox(image, contract)[0], contract)
    return to_tensor(np.asarray(resize_and_crop(image, contract)), contract)
