"""The vector stores behind :class:`faceengine.index.GalleryIndex`: top-k inner product by
vector id, with ids added and removed in place (no rebuild for a change).

* ``NumpyStore``: a dense matrix; a removed row is filled with the last row, so the matrix
  stays dense and a change costs one row copy. Exact.
* ``FaissStore``: FAISS with native ids: ``IDMap2,Flat`` (exact), ``IVF*,Flat`` (approximate,
  the default for big galleries) and ``IVF*,SQ8`` (approximate, a quarter of the memory).
  IVF keeps a hashtable from id to list entry, so ``remove_ids`` costs the ids removed, not
  the gallery size.
* ``HnswStore``: ``IndexHNSWFlat``, which cannot remove a vector: a removed vector becomes a
  tombstone, left out of searches by an id selector, and the graph is rebuilt from the live
  vectors once tombstones pass ``compact_fraction`` of it (a full HNSW build).

Every store takes L2-normalised float32 rows and answers ``(ids, similarities)`` with -1 for
"no result"; each can export itself to named arrays and come back from them (snapshots).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

# Queries x gallery similarity block kept under this many floats (256 MiB) by the numpy search.
NUMPY_BLOCK = 64 * 1024 * 1024


class Store(Protocol):
    kind: str

    def __len__(self) -> int: ...
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...
    def remove(self, ids: np.ndarray) -> None: ...
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...
    def export(self) -> dict[str, np.ndarray]: ...
    def vector_ids(self) -> np.ndarray: ...


class NumpyStore:
    kind = "numpy"

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._matrix = np.zeros((0, dim), np.float32)
        self._ids = np.zeros(0, np.int64)
        self._n = 0
        self._row_of: dict[int, int] = {}

    def __len__(self) -> int:
        return self._n

    def _reserve(self, extra: int) -> None:
        needed = self._n + extra
        if needed <= len(self._matrix):
            return
        # Doubling keeps a stream of single adds at one row copy each, amortised.
        capacity = max(needed, 2 * len(self._matrix), 16)
        matrix = np.zeros((capacity, self.dim), np.float32)
        matrix[: self._n] = self._matrix[: self._n]
        ids = np.full(capacity, -1, np.int64)
        ids[: self._n] = self._ids[: self._n]
        self._matrix, self._ids = matrix, ids

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if not len(ids):
            return
        self._reserve(len(ids))
        start, stop = self._n, self._n + len(ids)
        self._matrix[start:stop] = vectors
        self._ids[start:stop] = ids
        self._row_of.update(zip(ids.tolist(), range(start, stop), strict=True))
        self._n = stop

    def remove(self, ids: np.ndarray) -> None:
        for vector_id in ids.tolist():
            row = self._row_of.pop(vector_id, None)
            if row is None:
                continue
            last = self._n - 1
            if row != last:
                self._matrix[row] = self._matrix[last]
                moved = int(self._ids[last])
                self._ids[row] = moved
                self._row_of[moved] = row
            self._ids[last] = -1
            self._n = last

    def search(self, queries: np.ndarray, k: int, block_floats: int = NUMPY_BLOCK) -> tuple[np.ndarray, np.ndarray]:
        matrix = self._matrix[: self._n]
        k = min(k, self._n)
        block = max(1, block_floats // max(1, self._n))
        all_rows, all_sim = [], []
        for start in range(0, len(queries), block):
            sims = queries[start : start + block] @ matrix.T
            if k < sims.shape[1]:
                part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            else:
                part = np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
            part_sims = np.take_along_axis(sims, part, axis=1)
            # Best first; equal similarities in row order, so results are deterministic.
            order = np.lexsort((part, -part_sims), axis=1)
            all_rows.append(np.take_along_axis(part, order, axis=1))
            all_sim.append(np.take_along_axis(part_sims, order, axis=1))
        rows = np.concatenate(all_rows)
        return self._ids[rows], np.concatenate(all_sim)

    def export(self) -> dict[str, np.ndarray]:
        return {"ids": self._ids[: self._n].copy(), "matrix": self._matrix[: self._n].copy()}

    def vector_ids(self) -> np.ndarray:
        return np.sort(self._ids[: self._n])

    @classmethod
    def restore(cls, dim: int, arrays: dict[str, np.ndarray]) -> NumpyStore:
        store = cls(dim)
        store.add(np.asarray(arrays["ids"], np.int64), np.asarray(arrays["matrix"], np.float32).reshape(-1, dim))
        return store


# Training vectors a list: FAISS's k-means warns below 39; more than this adds build time only.
TRAIN_PER_LIST = 64
KMEANS_ROUNDS = 10


def ivf_lists(size: int, wanted: int = 0) -> int:
    """Inverted lists for an IVF index of ``size`` vectors: ``wanted``, or about 4 sqrt(size)
    (4000 at a million), with at least 39 training vectors a list. Measured at 1M on 2 cores
    (docs/benchmarks.md): 4000 lists reach recall@1 0.993 scanning a tenth of the lists in
    6.8 ms, where 2000 lists need an eighth for 0.992 in 8.5 ms; 8000 gain little more and
    take four times as long to train."""
    lists = wanted or int(4 * math.sqrt(max(1, size)))
    return max(1, min(lists, size // 39 or 1))


class FaissStore:
    """FAISS with its own ids: ``flat`` (exact), ``ivf`` and ``ivf_sq8`` (approximate)."""

    def __init__(self, kind: str, dim: int, *, nlist: int = 0, nprobe: int = 32, index: Any = None) -> None:
        self.kind, self.dim, self.nlist, self.nprobe = kind, dim, nlist, nprobe
        self._index = index

    def _make(self, training: np.ndarray) -> Any:
        import faiss  # only big galleries pay for the import

        if self.kind == "faiss":
            return faiss.index_factory(self.dim, "IDMap2,Flat", faiss.METRIC_INNER_PRODUCT)
        lists = ivf_lists(len(training), self.nlist)
        code = "Flat" if self.kind == "ivf" else "SQ8"
        index = faiss.index_factory(self.dim, f"IVF{lists},{code}", faiss.METRIC_INNER_PRODUCT)
        if len(training) > TRAIN_PER_LIST * lists:  # a fixed sample: the same lists every build
            picked = np.random.default_rng(0).choice(len(training), TRAIN_PER_LIST * lists, replace=False)
            training = training[np.sort(picked)]
        # Ten k-means rounds instead of FAISS's 25: the same recall at 1M (0.993 either way) in
        # a third of the training time, which a worker without a snapshot waits for.
        index.cp.niter = KMEANS_ROUNDS  # type: ignore[attr-defined]
        index.train(training)
        # A hashtable from id to list entry: removing an id does not scan every list.
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
        return index

    def _tune(self) -> None:
        if self.kind != "faiss" and self._index is not None:
            self._index.nprobe = min(self.nprobe, self._index.nlist)

    @property
    def lists(self) -> int:
        return int(self._index.nlist) if self._index is not None and self.kind != "faiss" else 0

    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if not len(ids):
            return
        if self._index is None:
            # IVF is trained on the first vectors it gets (the whole gallery when it is built);
            # the gallery rebuilds it when its size has moved far from that (GalleryIndex).
            self._index = self._make(vectors)
            self._tune()
        self._index.add_with_ids(vectors, np.ascontiguousarray(ids, np.int64))

    def remove(self, ids: np.ndarray) -> None:
        if self._index is None or not len(ids):
            return
        import faiss

        ids = np.ascontiguousarray(ids, np.int64)
        if self.kind == "faiss":
            self._index.remove_ids(faiss.IDSelectorBatch(len(ids), faiss.swig_ptr(ids)))
        else:  # the hashtable direct map takes only an explicit array of ids
            self._index.remove_ids(faiss.IDSelectorArray(len(ids), faiss.swig_ptr(ids)))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._index is None:
            return np.full((len(queries), k), -1, np.int64), np.zeros((len(queries), k), np.float32)
        similarities, ids = self._index.search(queries, k)
        return ids, similarities

    def export(self) -> dict[str, np.ndarray]:
        import faiss

        if self._index is None:
            return {}
        return {"faiss": faiss.serialize_index(self._index)}

    def vector_ids(self) -> np.ndarray:
        import faiss

        if self._index is None:
            return np.zeros(0, np.int64)
        if self.kind == "faiss":
            return np.sort(faiss.vector_to_array(self._index.id_map))
        lists = self._index.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
            for i in range(self._index.nlist)
            if lists.list_size(i)
        ]
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    @classmethod
    def restore(cls, kind: str, dim: int, arrays: dict[str, np.ndarray], *, nlist: int, nprobe: int) -> FaissStore:
        import faiss

        index = faiss.deserialize_index(np.asarray(arrays["faiss"], np.uint8)) if "faiss" in arrays else None
        if index is not None and index.d != dim:
            raise ValueError(f"The stored FAISS index is {index.d}-d, expected {dim}.")
        store = cls(kind, dim, nlist=nlist, nprobe=nprobe, index=index)
        store._tune()
        return store


class HnswStore:
    """HNSW with tombstones: FAISS's HNSW cannot remove a vector, so a removed one is marked
    dead and filtered out of searches; past ``compact_fraction`` dead the graph is rebuilt."""

    kind = "hnsw"

    def __init__(self, dim: int, *, m: int, ef_construction: int, ef_search: int, compact_fraction: float) -> None:
        self.dim, self.m, self.ef_construction, self.ef_search = dim, m, ef_construction, ef_search
        self.compact_fraction = compact_fraction
        self._index: Any = None
        self._ids = np.zeros(0, np.int64)  # external id of each graph node
        self._alive = np.zeros(0, bool)
        self._node_of: dict[int, int] = {}
        self._selector: Any = None
        self._bitmap: np.ndarray | None = None
        self.compactions = 0

    def _new_index(self) -> Any:
        import faiss

        index = faiss.IndexHNSWFlat(self.dim, self.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.ef_construction
        index.hnsw.efSearch = self.ef_search
        return index

    def __len__(self) -> int:
        return len(self._node_of)

    def set_ef_search(self, ef_search: int) -> None:
        self.ef_search = ef_search
        if self._index is not None:
            self._index.hnsw.efSearch = ef_search

    @property
    def tombstones(self) -> int:
        return len(self._ids) - len(self._node_of)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if not len(ids):
            return
        if self._index is None:
            self._index = self._new_index()
        start = len(self._ids)
        self._index.add(vectors)
        self._ids = np.concatenate([self._ids, ids.astype(np.int64)])
        self._alive = np.concatenate([self._alive, np.ones(len(ids), bool)])
        self._node_of.update(zip(ids.tolist(), range(start, start + len(ids)), strict=True))
        self._selector = None

    def remove(self, ids: np.ndarray) -> None:
        for vector_id in ids.tolist():
            node = self._node_of.pop(vector_id, None)
            if node is not None:
                self._alive[node] = False
                self._selector = None
        if self._index is not None and self.tombstones > self.compact_fraction * len(self._ids):
            self.compact()

    def compact(self) -> None:
        """Rebuild the graph from the live vectors (minutes for millions of them)."""
        nodes = np.flatnonzero(self._alive)
        vectors = self._index.reconstruct_n(0, self._index.ntotal)[nodes] if len(nodes) else None
        ids = self._ids[nodes]
        self._index, self._ids, self._alive, self._node_of = None, np.zeros(0, np.int64), np.zeros(0, bool), {}
        if vectors is not None:
            self.add(ids, vectors)
        self.compactions += 1

    def _params(self) -> Any:
        import faiss

        if self.tombstones == 0:
            return None
        if self._selector is None:
            # Bit i of byte i // 8 is node i, the layout of faiss.IDSelectorBitmap.
            self._bitmap = np.packbits(self._alive, bitorder="little")
            self._selector = faiss.IDSelectorBitmap(len(self._alive), faiss.swig_ptr(self._bitmap))
        return faiss.SearchParametersHNSW(sel=self._selector, efSearch=self.ef_search)  # type: ignore[attr-defined]

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._index is None or not self._node_of:
            return np.full((len(queries), k), -1, np.int64), np.zeros((len(queries), k), np.float32)
        params = self._params()
        if params is None:
            similarities, nodes = self._index.search(queries, k)
        else:
            similarities, nodes = self._index.search(queries, k, params=params)
        ids = np.where(nodes >= 0, self._ids[np.maximum(nodes, 0)], -1)
        return ids, similarities

    def export(self) -> dict[str, np.ndarray]:
        import faiss

        if self._index is None:
            return {}
        return {"faiss": faiss.serialize_index(self._index), "nodes": self._ids.copy(), "alive": self._alive.copy()}

    def vector_ids(self) -> np.ndarray:
        return np.sort(self._ids[self._alive])

    @classmethod
    def restore(cls, dim: int, arrays: dict[str, np.ndarray], **options: Any) -> HnswStore:
        import faiss

        store = cls(dim, **options)
        if "faiss" in arrays:
            store._index = faiss.deserialize_index(np.asarray(arrays["faiss"], np.uint8))
            store._index.hnsw.efSearch = store.ef_search
            store._ids = np.asarray(arrays["nodes"], np.int64).copy()
            store._alive = np.asarray(arrays["alive"], bool).copy()
            live = np.flatnonzero(store._alive)
            store._node_of = dict(zip(store._ids[live].tolist(), live.tolist(), strict=True))
        return store
