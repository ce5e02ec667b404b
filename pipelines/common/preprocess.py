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
    """RGB pixels [H, W, 3] or a batch [N, H, W, 3] (any dtype) -> the card's float32 batch (a new array)."""
    batch = np.asarray(pixels)
    if batch.ndim == 3:
        batch = batch[None]
    if contract.channels == "BGR":  # mean and std are given in the card's channel order
        batch = batch[..., ::-1]
    if contract.transposed:
        batch = batch.transpose(0, 2, 1, 3)
    channel_axis = 1 if contract.layout == "NCHW" else 3
    shape = list(batch.shape[:3])
    shape.insert(channel_axis, batch.shape[3])
    tensor = np.empty(shape, np.float32)
    # one channel plane at a time, with scalars: numpy broadcasting a 3-vector over the last axis is 2-6x slower
    for channel, (mean, std) in enumerate(zip(contract.mean, contract.std)):
        plane = tensor[:, channel] if channel_axis == 1 else tensor[..., channel]
        np.subtract(batch[..., channel], np.float32(mean), out=plane, dtype=np.float32)
        plane /= np.float32(std)
    return tensor


def to_input_tensor(image: Image.Image, contract: InputContract) -> np.ndarray:
    """float32 batch of one, real-valued: (pixel - mean) / std in the card's channel order and layout."""
    if contract.resize == "letterbox":
        return to_tensor(letterbox(image, contract)[0], contract)
    return to_tensor(np.asarray(resize_and_crop(image, contract)), contract)
