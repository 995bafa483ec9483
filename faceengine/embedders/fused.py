"""A fused model: two or more embedders seen as one vector space.

Each part embeds the face (its own preprocessing, its own flip), its unit vector is scaled by
the part's weight, and the concatenation is normalised again. The cosine of two fused vectors
is then ``sum(w_i**2 * cos_i) / sum(w_i**2)``: a weighted mean of the parts' cosines, so the
gallery, the index, the backup and the API see one model with one name and one dimension.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ModelError
from .base import Embedder, InputConvention, l2_normalize


class FusedEmbedder(Embedder):
    def __init__(
        self, parts: Sequence[Embedder], weights: Sequence[float], *, name: str, dim: int, convention: InputConvention
    ) -> None:
        if len(parts) < 2 or len(parts) != len(weights):
            raise ModelError(f"{name}: a fused model needs two or more parts, each with a weight.")
        if any(not np.isfinite(w) or w <= 0 for w in weights):
            raise ModelError(f"{name}: every part's weight must be a positive number, got {list(weights)}.")
        if sum(part.dim for part in parts) != dim:
            raise ModelError(f"{name}: its parts give {sum(p.dim for p in parts)}-d vectors, the spec says {dim}.")
        sizes = {part.convention.size for part in parts}
        if sizes != {convention.size}:
            raise ModelError(f"{name}: every part must take {convention.size}px faces, they take {sorted(sizes)}.")
        self.parts = list(parts)
        self.weights = [float(w) for w in weights]
        self.name, self.dim, self.convention = name, dim, convention

    def embed(self, faces: np.ndarray, *, flip: bool = False) -> np.ndarray:
        faces = np.asarray(faces)
        if faces.ndim == 3:
            faces = faces[None]
        if len(faces) == 0:
            # Let the first part check the shape; an empty batch has no vectors.
            self.parts[0].embed(faces, flip=flip)
            return np.zeros((0, self.dim), dtype=np.float32)
        pieces = [weight * part.embed(faces, flip=flip) for part, weight in zip(self.parts, self.weights, strict=True)]
        return l2_normalize(np.concatenate(pieces, axis=1))

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        # Never called: ``embed`` hands the faces to the parts, each with its own preprocessing.
        raise NotImplementedError
