"""A searchable gallery index: exact numpy search for small galleries, FAISS for big ones.

The index answers the same questions as :class:`faceengine.gallery.Gallery`
(``search``, ``check_compatible``, ``len``), so it can be handed to ``Recognizer.recognize``.
Three backends, chosen by size unless forced:

* ``numpy``: a matrix product and a partial sort. Exact; the fastest for one query at a time
  at every size measured (12.5 ms per query at 1M templates on 16 cores).
* ``faiss``: ``IndexFlatIP``, the same exact search; 1.5-2.5x faster than numpy for batches of
  queries from ~100k templates on, a little slower for a single query.
* ``hnsw``: ``IndexHNSWFlat`` with inner product, approximate: under 1 ms per query at 1M
  templates, but its build takes minutes (144 s for 1M on 16 cores), and the index is rebuilt
  whenever the gallery changes; so only for very big galleries that change rarely.

``benchmarks/gallery.py`` measures all three, with the recall HNSW costs.

Vectors are L2-normalised on the way in (a mean template is shorter than 1), so the inner
product is the cosine similarity. Several vectors may share a label (nearest-sample matching:
every enrolment photo of a member is indexed); results then hold each label once, with its best
similarity, so that "the second-best member" really is another member.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from .gallery import Match, check_same_model

BACKENDS = ("auto", "numpy", "faiss", "hnsw")
# Queries x gallery similarity block kept under this many floats (256 MiB) by the numpy search.
_NUMPY_BLOCK = 64 * 1024 * 1024


@dataclass(frozen=True)
class IndexConfig:
    """Which backend to use and how to tune HNSW. ``auto`` picks by gallery size."""

    backend: str = "auto"
    # Exact FAISS from this many vectors on (faster for batches of queries), numpy below.
    faiss_min_size: int = 200_000
    # HNSW (approximate) from this many vectors on. Exact search at 1M templates still takes
    # ~13 ms a query, while an HNSW rebuild after each gallery change takes minutes: opt-in.
    hnsw_min_size: int = 2_000_000
    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    # Recall@1 at 1M templates shaped like real embeddings: 0.985 at 32, 1.0 from 64 on.
    hnsw_ef_search: int = 128

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"Index backend must be one of {BACKENDS}, got {self.backend!r}.")

    def choose(self, size: int) -> str:
        if self.backend != "auto":
            return self.backend
        if size >= self.hnsw_min_size:
            return "hnsw"
        if size >= self.faiss_min_size:
            return "faiss"
        return "numpy"


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Unit-length float32 rows (a zero row stays zero)."""
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


class GalleryIndex:
    """Top-k cosine search over labelled vectors of one model."""

    def __init__(
        self,
        model_name: str,
        dim: int,
        labels: Sequence[Hashable] = (),
        vectors: np.ndarray | None = None,
        *,
        config: IndexConfig | None = None,
    ) -> None:
        self.model_name, self.dim = model_name, int(dim)
        self.config = config or IndexConfig()
        self.labels = list(labels)
        matrix = np.zeros((0, self.dim), np.float32) if vectors is None else np.asarray(vectors, np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.dim or len(matrix) != len(self.labels):
            raise ValueError(f"Expected {len(self.labels)} vectors of dimension {self.dim}, got {matrix.shape}.")
        started = time.perf_counter()
        # Label codes let results keep each label once, however many vectors it has.
        codes: dict[Hashable, int] = {}
        self._codes = np.fromiter(
            (codes.setdefault(label, len(codes)) for label in self.labels), dtype=np.int64, count=len(self.labels)
        )
        self.label_count = len(codes)
        self._max_per_label = int(np.bincount(self._codes).max()) if len(self._codes) else 0
        self.backend = self.config.choose(len(self.labels))
        self._matrix: np.ndarray | None = None
        self._faiss = None
        if len(self.labels):
            normalised = normalize_rows(matrix)
            if self.backend == "numpy":
                self._matrix = normalised
            else:
                self._faiss = self._build_faiss(normalised)
        self.build_seconds = time.perf_counter() - started

    def _build_faiss(self, vectors: np.ndarray):
        import faiss  # only big galleries pay for the import

        index: faiss.Index
        if self.backend == "hnsw":
            index = faiss.IndexHNSWFlat(self.dim, self.config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.config.hnsw_ef_construction
            index.hnsw.efSearch = self.config.hnsw_ef_search
        else:
            index = faiss.IndexFlatIP(self.dim)
        index.add(vectors)
        return index

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return (
            f"GalleryIndex({self.model_name!r}, dim={self.dim}, vectors={len(self)}, "
            f"labels={self.label_count}, backend={self.backend!r})"
        )

    def check_compatible(self, model_name: str, dim: int) -> None:
        check_same_model(self.model_name, self.dim, model_name, dim)

    def search(self, queries: np.ndarray, k: int = 1) -> list[list[Match]]:
        """The k most similar labels for every query, most similar first, each label once."""
        queries = np.asarray(queries, np.float32).reshape(-1, self.dim)
        if len(self) == 0 or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        k = max(1, min(int(k), self.label_count))
        # Among the best k * (most vectors of one label) vectors there are at least k labels.
        raw_k = min(len(self), k * self._max_per_label)
        indices, similarities = self._raw_search(normalize_rows(queries), raw_k)
        return [self._collect(row_idx, row_sim, k) for row_idx, row_sim in zip(indices, similarities, strict=True)]

    def _raw_search(self, queries: np.ndarray, raw_k: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices, similarities), each (n_queries, raw_k), best first; -1 marks no result."""
        if self._faiss is not None:
            similarities, indices = self._faiss.search(queries, raw_k)
            return indices, similarities
        matrix = self._matrix
        if matrix is None:  # built in __init__ for every non-empty numpy gallery
            raise RuntimeError("GalleryIndex has neither a faiss index nor a matrix to search.")
        block = max(1, _NUMPY_BLOCK // len(matrix))
        all_idx, all_sim = [], []
        for start in range(0, len(queries), block):
            sims = queries[start : start + block] @ matrix.T
            if raw_k < sims.shape[1]:
                part = np.argpartition(-sims, raw_k - 1, axis=1)[:, :raw_k]
            else:
                part = np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
            part_sims = np.take_along_axis(sims, part, axis=1)
            # Best first; equal similarities in index order, so results are deterministic.
            order = np.lexsort((part, -part_sims), axis=1)
            all_idx.append(np.take_along_axis(part, order, axis=1))
            all_sim.append(np.take_along_axis(part_sims, order, axis=1))
        return np.concatenate(all_idx), np.concatenate(all_sim)

    def _collect(self, indices: np.ndarray, similarities: np.ndarray, k: int) -> list[Match]:
        matches: list[Match] = []
        seen: set[int] = set()
        for index, similarity in zip(indices.tolist(), similarities.tolist(), strict=True):
            if index < 0:
                continue
            code = int(self._codes[index])
            if code in seen:
                continue
            seen.add(code)
            matches.append(Match(self.labels[index], float(similarity)))
            if len(matches) == k:
                break
        return matches
