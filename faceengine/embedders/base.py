"""The embedder interface: preprocessing, batching, flip test-time augmentation, L2 norm.

A backend only implements ``_forward`` on a preprocessed float32 batch; everything a caller
relies on (input convention, fixed batch padding, normalised output) lives here once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class InputConvention:
    """How a network wants its 112x112 face: channel order, layout and pixel scaling."""

    color: str = "RGB"  # "RGB" or "BGR"
    mean: float = 127.5
    std: float = 128.0
    layout: str = "NHWC"  # or "NCHW" (ONNX models from insightface)
    size: int = 112

    def to_dict(self) -> dict:
        return {"color": self.color, "mean": self.mean, "std": self.std, "layout": self.layout, "size": self.size}

    @classmethod
    def from_dict(cls, data: dict) -> InputConvention:
        return cls(**{key: data[key] for key in ("color", "mean", "std", "layout", "size") if key in data})

    def preprocess(self, faces: np.ndarray) -> np.ndarray:
        """uint8 RGB (n, size, size, 3) -> float32 batch in the network's convention."""
        batch = faces.astype(np.float32)
        if self.color == "BGR":
            batch = batch[..., ::-1]
        batch = (batch - self.mean) / self.std
        if self.layout == "NCHW":
            batch = batch.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(batch)


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class Embedder(ABC):
    """Turns aligned faces into L2-normalised embeddings.

    ``name`` and ``dim`` identify the vector space: vectors of different names are never compared.
    ``fixed_batch`` is set for networks compiled for one batch size (the default TFLite file
    takes exactly 2 faces); the base class pads and splits so callers pass any number.
    """

    name: str
    dim: int
    convention: InputConvention
    fixed_batch: int | None = None
    max_batch: int = 64

    def embed(self, faces: np.ndarray, *, flip: bool = False) -> np.ndarray:
        """faces: uint8 RGB (n, 112, 112, 3) aligned crops -> float32 (n, dim), unit length.

        With ``flip`` the embedding of each face and of its mirror image are summed before the
        normalisation (the usual test-time augmentation of the ArcFace benchmarks).
        """
        faces = np.asarray(faces)
        if faces.ndim == 3:
            faces = faces[None]
        size = self.convention.size
        if faces.ndim != 4 or faces.shape[1:] != (size, size, 3):
            raise ValueError(f"Expected aligned faces of shape (n, {size}, {size}, 3), got {faces.shape}.")
        if len(faces) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        raw = self._embed_raw(faces)
        if flip:
            raw = raw + self._embed_raw(faces[:, :, ::-1, :])
        return l2_normalize(raw)

    def _embed_raw(self, faces: np.ndarray) -> np.ndarray:
        batch_size = self.fixed_batch or self.max_batch
        outputs = []
        for start in range(0, len(faces), batch_size):
            chunk = self.convention.preprocess(faces[start : start + batch_size])
            count = len(chunk)
            if self.fixed_batch and count < self.fixed_batch:
                padding = np.zeros((self.fixed_batch - count, *chunk.shape[1:]), dtype=chunk.dtype)
                chunk = np.concatenate([chunk, padding])
            outputs.append(np.asarray(self._forward(chunk), dtype=np.float32)[:count])
        result = np.concatenate(outputs)
        if result.shape[1] != self.dim:
            raise ValueError(f"{self.name} produced {result.shape[1]}-d vectors, expected {self.dim}.")
        return result

    @abstractmethod
    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """Run the network on a preprocessed float32 batch; return raw (unnormalised) vectors."""
