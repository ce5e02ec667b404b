"""The input tensor a card declares, made from an upright RGB photo."""

from __future__ import annotations

import numpy as np
from PIL import Image

from models.catalog import InputContract


def resize_and_crop(image: Image.Image, contract: InputContract) -> Image.Image:
    """Shorter side to size / crop_fraction (bilinear), then the centre size x size; or a plain stretch."""
    if contract.resize == "stretch":
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


def to_input_tensor(image: Image.Image, contract: InputContract) -> np.ndarray:
    """float32 batch of one, real-valued: (pixel - mean) / std in the card's channel order and layout."""
    pixels = np.asarray(resize_and_crop(image, contract), dtype=np.float32)
    if contract.channels == "BGR":
        pixels = pixels[..., ::-1]
    tensor = (pixels - np.asarray(contract.mean, np.float32)) / np.asarray(contract.std, np.float32)
    if contract.layout == "NCHW":
        tensor = tensor.transpose(2, 0, 1)
    return np.ascontiguousarray(tensor[None])
