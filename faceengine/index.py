"""A searchable gallery index that takes changes in place: exact numpy search for small
galleries, FAISS IVF (approximate, tuned for recall@1 >= 0.99) for big ones.

The index answers the same questions as :class:`faceengine.gallery.Gallery`
(``search``, ``check_compatible``, ``len``), so it can be handed to ``Recognizer.recognize``,
and it changes without a rebuild: ``replace_labels`` removes every vector of some labels and
adds their new ones (an enrolment, a re-computed template, a deletion), at a cost that follows
the change, not the gallery. Backends (``faceengine.index_stores``), chosen by size unless forced:

* ``numpy``: a matrix product and a partial sort. Exact; the default below ``ivf_min_size``.
* ``ivf``: FAISS ``IVF,Flat`` with inner product; approximate, the default from
  ``ivf_min_size`` on. ``nprobe`` is set so recall@1 stays >= 0.99 on probes made from real
  LFW embeddings (``benchmarks/gallery_scale.py``): face embeddings have a high intrinsic
  dimension, so that takes a tenth or more of the lists.
* ``ivf_sq8``: the same with 8-bit scalar quantisation: a quarter of the memory of ``ivf``
  (about 200 bytes a vector instead of 776), for galleries that do not fit.
* ``faiss``: exact FAISS (``IDMap2,Flat``); removing ids costs a pass over the gallery.
* ``hnsw``: HNSW, approximate; removals are tombstones until a compaction rebuilds the graph
  (minutes at a million vectors), so only where the gallery rarely shrinks. Opt-in.

Vectors are L2-normalised on the way in (a mean template is shorter than 1), so the inner
product is the cosine similarity. Several vectors may share a label (nearest-sample matching:
every enrolment photo of a member is indexed); results then hold each label once, with its best
similarity, so that "the second-best member" really is another member. Each vector has an
integer id (the member id for templates, the embedding id for samples); with ``ids`` equal to
the labels (one vector per label) no id-to-label map is kept, which saves ~100 bytes a vector.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .gallery import Match, check_same_model
from .index_stores import NUMPY_BLOCK, FaissStore, HnswStore, NumpyStore, Store

BACKENDS = ("auto", "numpy", "faiss", "ivf", "ivf_sq8", "hnsw")
APPROXIMATE = ("ivf", "ivf_sq8", "hnsw")
# Queries x gallery similarity block of the numpy search, in floats (256 MiB).
_NUMPY_BLOCK = NUMPY_BLOCK


@dataclass(frozen=True)
class IndexConfig:
    """Which backend to use and how to tune it. ``auto`` picks by gallery size."""

    backend: str = "auto"
    # IVF (approximate) from this many vectors on: at 100k on 2 cores it answers in 1.6 ms
    # against 2.0 ms for the exact scan on a quiet machine (2.5 against 7.5 under load), at
    # recall@1 0.999 on real probes (docs/benchmarks.md); below, the exact scan is fast enough
    # and needs no training.
    ivf_min_size: int = 100_000
    # Exact FAISS / HNSW in ``auto`` from these sizes on; None: only when forced.
    faiss_min_size: int | None = None
    hnsw_min_size: int | None = None
    ivf_nlist: int = 0  # 0: about 4 sqrt(size) lists (4000 at 1M, 1265 at 100k)
    # Lists searched a query. Recall@1 against exact search on real LFW probes
    # (benchmarks/gallery_scale.py): at 1M (4000 lists) 0.988 at 320, 0.993 at 384, 0.995 at
    # 512; smaller galleries have fewer lists, so the same number scans a larger share of them.
    ivf_nprobe: int = 384
    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    # Recall@1 at 1M templates shaped like real embeddings: 0.985 at 32, 1.0 from 64 on.
    hnsw_ef_search: int = 128
    # HNSW graph rebuilt from its live vectors when this share of its nodes is removed.
    hnsw_compact_fraction: float = 0.1

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"Index backend must be one of {BACKENDS}, got {self.backend!r}.")

    def choose(self, size: int) -> str:
        if self.backend != "auto":
            return self.backend
        if self.hnsw_min_size is not None and size >= self.hnsw_min_size:
            return "hnsw"
        if size >= self.ivf_min_size:
            return "ivf"
        if self.faiss_min_size is not None and size >= self.faiss_min_size:
            return "faiss"
        return "numpy"


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Unit-length float32 rows (a zero row stays zero)."""
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def make_store(backend: str, dim: int, config: IndexConfig, arrays: dict[str, np.ndarray] | None = None) -> Store:
    """An empty store of a backend, or one restored from ``export`` arrays."""
    if backend == "numpy":
        return NumpyStore.restore(dim, arrays) if arrays else NumpyStore(dim)
    if backend == "hnsw":
        options: dict[str, Any] = {
            "m": config.hnsw_m,
            "ef_construction": config.hnsw_ef_construction,
            "ef_search": config.hnsw_ef_search,
            "compact_fraction": config.hnsw_compact_fraction,
        }
        return HnswStore.restore(dim, arrays, **options) if arrays is not None else HnswStore(dim, **options)
    if arrays is not None:
        return FaissStore.restore(backend, dim, arrays, nlist=config.ivf_nlist, nprobe=config.ivf_nprobe)
    return FaissStore(backend, dim, nlist=config.ivf_nlist, nprobe=config.ivf_nprobe)


class GalleryIndex:
    """Top-k cosine search over labelled vectors of one model; changes in place."""

    def __init__(
        self,
        model_name: str,
        dim: int,
        labels: Sequence[Hashable] = (),
        vectors: np.ndarray | None = None,
        *,
        ids: Sequence[int] | np.ndarray | None = None,
        config: IndexConfig | None = None,
        backend: str | None = None,
    ) -> None:
        self.model_name, self.dim = model_name, int(dim)
        self.config = config or IndexConfig()
        labels = list(labels)
        matrix = np.zeros((0, self.dim), np.float32) if vectors is None else np.asarray(vectors, np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.dim or len(matrix) != len(labels):
            raise ValueError(f"Expected {len(labels)} vectors of dimension {self.dim}, got {matrix.shape}.")
        started = time.perf_counter()
        id_array = np.arange(len(labels), dtype=np.int64) if ids is None else np.asarray(ids, np.int64)
        if len(id_array) != len(labels) or len(np.unique(id_array)) != len(id_array):
            raise ValueError("Every vector needs its own id.")
        # One vector per label with the label as its id (templates by member id): no id map.
        self.identity = ids is not None and np.array_equal(id_array, np.asarray(labels, dtype=object))
        self._label_of: dict[int, Hashable] | None = None if self.identity else {}
        self._ids_of_label: dict[Hashable, list[int]] | None = None if self.identity else {}
        self._max_per_label = 1 if self.identity else 0
        self._lock = threading.RLock()
        self.backend = backend or self.config.choose(len(labels))
        self._store = make_store(self.backend, self.dim, self.config)
        self._add(labels, id_array, normalize_rows(matrix))
        self.built_size = len(self)
        self.build_seconds = time.perf_counter() - started

    # ----------------------------------------------------------------------------- changes

    def _add(self, labels: Sequence[Hashable], ids: np.ndarray, vectors: np.ndarray) -> None:
        if self._label_of is not None and self._ids_of_label is not None:
            for vector_id, label in zip(ids.tolist(), labels, strict=True):
                self._label_of[vector_id] = label
                same = self._ids_of_label.setdefault(label, [])
                same.append(vector_id)
                # An upper bound (never lowered by removals): it only sizes the raw search.
                self._max_per_label = max(self._max_per_label, len(same))
        self._store.add(ids, vectors)

    def _remove(self, labels: Iterable[Hashable]) -> None:
        if self._ids_of_label is None or self._label_of is None:
            ids = np.fromiter((int(label) for label in labels), dtype=np.int64)  # type: ignore[call-overload]
        else:
            found: list[int] = []
            for label in labels:
                found.extend(self._ids_of_label.pop(label, ()))
            for vector_id in found:
                self._label_of.pop(vector_id, None)
            ids = np.asarray(found, np.int64)
        self._store.remove(ids)

    def replace_labels(
        self,
        changed: Iterable[Hashable],
        labels: Sequence[Hashable] = (),
        ids: Sequence[int] | np.ndarray = (),
        vectors: np.ndarray | None = None,
    ) -> None:
        """Drop every vector of the ``changed`` labels, then add the given vectors (the current
        ones of those labels; a label with none left is simply gone)."""
        id_array = np.asarray(ids, np.int64).reshape(-1)
        matrix = np.zeros((0, self.dim), np.float32) if vectors is None else np.asarray(vectors, np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.dim or not len(matrix) == len(labels) == len(id_array):
            raise ValueError(f"Expected {len(labels)} vectors of dimension {self.dim} with ids, got {matrix.shape}.")
        if self.identity and not np.array_equal(id_array, np.asarray(labels, dtype=object)):
            raise ValueError("This index holds one vector per label, with the label as its id.")
        with self._lock:
            self._remove(changed)
            self._add(labels, id_array, normalize_rows(matrix))

    def needs_rebuild(self) -> bool:
        """Whether the size has moved so far from the build that another backend fits better,
        or IVF's lists (trained at the build) no longer fit the vectors."""
        ratio = len(self) / max(1, self.built_size)
        if self.config.choose(len(self)) != self.backend and not 0.8 <= ratio <= 1.25:
            return True
        return self.backend in ("ivf", "ivf_sq8") and not 0.5 <= ratio <= 2.0

    # ----------------------------------------------------------------------------- queries

    def __len__(self) -> int:
        return len(self._store)

    @property
    def labels(self) -> list[Hashable]:
        """The label of every vector, by vector id (a full pass: for inspection, not searches)."""
        with self._lock:
            ids = self._store.vector_ids().tolist()
            return list(ids) if self._label_of is None else [self._label_of[i] for i in ids]

    @property
    def label_count(self) -> int:
        return len(self._store) if self._ids_of_label is None else len(self._ids_of_label)

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
        with self._lock:
            if len(self) == 0 or len(queries) == 0:
                return [[] for _ in range(len(queries))]
            k = max(1, min(int(k), self.label_count))
            # Among the best k * (most vectors of one label) vectors there are at least k labels.
            raw_k = min(len(self), k * max(1, self._max_per_label))
            if isinstance(self._store, NumpyStore):
                ids, similarities = self._store.search(normalize_rows(queries), raw_k, _NUMPY_BLOCK)
            else:
                ids, similarities = self._store.search(normalize_rows(queries), raw_k)
            return [self._collect(row_ids, row_sim, k) for row_ids, row_sim in zip(ids, similarities, strict=True)]

    def _collect(self, ids: np.ndarray, similarities: np.ndarray, k: int) -> list[Match]:
        matches: list[Match] = []
        seen: set[Hashable] = set()
        for vector_id, similarity in zip(ids.tolist(), similarities.tolist(), strict=True):
            if vector_id < 0:
                continue
            label = vector_id if self._label_of is None else self._label_of.get(vector_id)
            if label is None or label in seen:
                continue
            seen.add(label)
            matches.append(Match(label, float(similarity)))
            if len(matches) == k:
                break
        return matches

    # ----------------------------------------------------------------------------- snapshots

    def export(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(metadata, named arrays) that ``restore`` turns back into this index; labels must
        be integers (member ids)."""
        with self._lock:
            meta = {
                "model": self.model_name,
                "dim": self.dim,
                "backend": self.backend,
                "vectors": len(self),
                "built_size": self.built_size,
                "identity": self.identity,
                "max_per_label": self._max_per_label,
            }
            arrays = {f"store.{name}": value for name, value in self._store.export().items()}
            if self._label_of is not None:
                arrays["ids"] = np.fromiter(self._label_of.keys(), np.int64, len(self._label_of))
                arrays["labels"] = np.fromiter(self._label_of.values(), np.int64, len(self._label_of))
            return meta, arrays

    @classmethod
    def restore(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray], config: IndexConfig) -> GalleryIndex:
        """The index ``export`` described; ValueError when the parts do not fit together."""
        index = cls(str(meta["model"]), int(meta["dim"]), config=config, backend=str(meta["backend"]))
        store_arrays = {name[6:]: value for name, value in arrays.items() if name.startswith("store.")}
        index._store = make_store(index.backend, index.dim, config, store_arrays)
        index.identity = bool(meta["identity"])
        if index.identity:
            index._label_of = index._ids_of_label = None
        else:
            ids, labels = arrays["ids"].tolist(), arrays["labels"].tolist()
            index._label_of, index._ids_of_label = dict(zip(ids, labels, strict=True)), {}
            for vector_id, label in zip(ids, labels, strict=True):
                index._ids_of_label.setdefault(label, []).append(vector_id)
        index._max_per_label = int(meta["max_per_label"])
        index.built_size = int(meta["built_size"])
        if len(index) != int(meta["vectors"]) or (index._label_of is not None and len(index._label_of) != len(index)):
            raise ValueError(f"The stored index holds {len(index)} vectors, its description says {meta['vectors']}.")
        return index
