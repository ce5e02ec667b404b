"""Face alignment, embeddings, matching against a gallery, and clustering faces into people.

Embeddings are L2-normalised and compared by cosine similarity. Two embeddings are comparable only when
they come from the same network (any precision of it): another network's vectors live in another space.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from PIL import Image

from models.hub import LoadedModel
from pipelines.common.preprocess import to_tensor

# The ArcFace / insightface 5-point template for 112x112 crops, in the landmark order of face_detection.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)


class EmbeddingSpaceError(ValueError):
    """Embeddings of different networks cannot be compared."""


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 rotation + uniform scale + translation taking src points to dst (least squares, Umeyama 1991)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if len(src) < 2:
        raise ValueError("alignment needs at least two landmarks")
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(covariance)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1  # no reflection
    rotation = u @ np.diag(d) @ vt
    scale = (s * d).sum() / src_c.var(0).sum()
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


class Landmarked(Protocol):
    """A detected face as alignment needs it (pipelines.vision.face_detection.Face is one)."""

    landmarks: np.ndarray  # (5, 2) photo pixels; NaN where the detector has no such point
    landmarks_present: tuple[bool, ...]


def align_face(image: Image.Image, face: Landmarked, size: int = 112) -> np.ndarray:
    """The face warped onto the ArcFace template: an RGB uint8 array [size, size, 3], as the embedder sees it."""
    present = np.array(face.landmarks_present) & ~np.isnan(face.landmarks).any(1)
    template = ARCFACE_TEMPLATE * (size / 112.0)
    forward = similarity_transform(face.landmarks[present], template[present])
    inverse = np.linalg.inv(np.vstack([forward, [0, 0, 1]]))[:2]  # PIL maps output pixels to input pixels
    warped = image.transform((size, size), Image.Transform.AFFINE, data=tuple(inverse.reshape(-1)),
                             resample=Image.Resampling.BILINEAR)
    return np.asarray(warped)


@dataclass(frozen=True)
class Embeddings:
    card: str
    space: str  # the network: embeddings of one space are comparable
    vectors: np.ndarray = field(compare=False)  # [N, D], L2-normalised
    ms_per_face: float = 0.0


class Embedder:
    """An embedding network; batches where the file allows, one face at a time where its batch is fixed."""

    def __init__(self, model: LoadedModel):
        self.model = model
        self.card = model.card
        self.space = model.card.arch

    def __call__(self, crops: np.ndarray) -> Embeddings:
        crops = np.asarray(crops)
        if crops.ndim == 3:
            crops = crops[None]
        if not len(crops):
            return Embeddings(self.card.name, self.space, np.zeros((0, self.card.output.classes), np.float32))
        start = time.perf_counter_ns()
        tensor = to_tensor(crops, self.card.input)
        batch = self.model.backend.inputs[0].shape[0]
        if isinstance(batch, int) and batch == 1:
            vectors = np.concatenate([self.model.backend.run(tensor[i:i + 1])[0] for i in range(len(tensor))])
        else:
            vectors = self.model.backend.run(tensor)[0]
        vectors = vectors.reshape(len(crops), -1).astype(np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        ms = (time.perf_counter_ns() - start) / 1e6 / len(crops)
        return Embeddings(self.card.name, self.space, vectors, ms)


def cosine(a: Embeddings, b: Embeddings) -> np.ndarray:
    """[len(a), len(b)] cosine similarities; refuses embeddings of different networks."""
    if a.space != b.space:
        raise EmbeddingSpaceError(
            f"{a.card} and {b.card} are different networks ({a.space} and {b.space}): their embeddings are not "
            "comparable. Embed both faces with the same model (any precision of it)."
        )
    return a.vectors @ b.vectors.T
