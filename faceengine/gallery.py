"""An in-memory gallery of labelled embeddings and exact cosine top-k search.

Vectors are unit length, so the inner product is the cosine similarity. A gallery belongs to one
model: searching it with another model's vectors is refused, never silently compared.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import ModelMismatch


def check_same_model(have_model: str, have_dim: int, model_name: str, dim: int) -> None:
    """Refuse to compare vectors of different models: the project's one rule for it."""
    if (model_name, int(dim)) != (have_model, int(have_dim)):
        raise ModelMismatch(
            f"The gallery holds {have_model} ({have_dim}-d) vectors; "
            f"queries from {model_name} ({dim}-d) cannot be compared with them.",
            details={"gallery_model": have_model, "gallery_dim": int(have_dim), "model": model_name, "dim": int(dim)},
        )


@dataclass(frozen=True)
class Match:
    label: Hashable
    similarity: float


class Gallery:
    def __init__(
        self, model_name: str, dim: int, labels: Sequence[Hashable] = (), vectors: np.ndarray | None = None
    ) -> None:
        self.model_name, self.dim = model_name, dim
        self.labels = list(labels)
        matrix = np.zeros((0, dim), np.float32) if vectors is None else np.asarray(vectors, np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != dim or len(matrix) != len(self.labels):
            raise ValueError(f"Expected {len(self.labels)} vectors of dimension {dim}, got {matrix.shape}.")
        self.vectors = matrix

    def __len__(self) -> int:
        return len(self.labels)

    def check_compatible(self, model_name: str, dim: int) -> None:
        check_same_model(self.model_name, self.dim, model_name, dim)

    def search(self, queries: np.ndarray, k: int = 1) -> list[list[Match]]:
        """The k most similar entries for every query, most similar first."""
        queries = np.asarray(queries, np.float32).reshape(-1, self.dim)
        if len(self) == 0:
            return [[] for _ in range(len(queries))]
        k = min(k, len(self))
        similarities = queries @ self.vectors.T
        top = np.argsort(-similarities, axis=1, kind="stable")[:, :k]
        return [
            [Match(self.labels[j], float(row[j])) for j in order] for row, order in zip(similarities, top, strict=True)
        ]
