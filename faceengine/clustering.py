"""Clustering of unknown faces: who is the same stranger across photos.

Average-linkage agglomerative clustering (scikit-learn) on cosine distance, cut at a distance
threshold, over a k-nearest-neighbour graph from FAISS (so only neighbours are ever merged and
the work stays near-linear in memory for big collections). Average linkage rather than single:
single linkage chains look-alikes into one cluster, while the average over every pair keeps a
cluster pure. Groups smaller than ``min_size`` are left out (label -1): a face seen once is
nobody to name yet.

``cluster_incremental`` is what runs as new photos arrive: a new face joins the existing
cluster whose average distance to it (the same criterion as the batch merge) is within the
threshold; what is left, with the faces that were noise so far, is clustered again.

Labels are ints, -1 for no cluster. Vectors are L2-normalised here; they must all come from one
model (the callers keep one model per clustering).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .embedders.registry import ModelSpec

NOISE = -1
# Measured by benchmarks/clustering.py on 2,201 LFW faces (docs/benchmarks.md#clustering): for
# MobileFaceNet a cut at average distance 0.45 (similarity 0.55, the 1:1 verification
# threshold 0.39 + 0.16) gave purity 0.997 and completeness 0.983; at 0.55 purity fell to 0.90
# (look-alikes merge). A wrong merge costs more than a split (naming it enrols a stranger), so
# the stricter cut. Relative to the model's own verification threshold, so another model gets
# a bar on its own scale.
THRESHOLD_MARGIN = 0.16
NEIGHBOURS = 30


@dataclass(frozen=True)
class ClusterConfig:
    """``threshold``: the largest average cosine distance (1 - similarity) within a cluster."""

    threshold: float = 0.45
    min_size: int = 2
    neighbours: int = NEIGHBOURS

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 2.0:
            raise ValueError(f"threshold is a cosine distance in (0, 2), got {self.threshold}.")
        if self.min_size < 1:
            raise ValueError(f"min_size must be at least 1, got {self.min_size}.")

    @classmethod
    def for_model(cls, spec: ModelSpec, *, min_size: int = 2) -> ClusterConfig:
        """The threshold of a model: its verification similarity plus the measured margin."""
        similarity = min(0.95, spec.verification_threshold + THRESHOLD_MARGIN)
        return cls(threshold=round(1.0 - similarity, 4), min_size=min_size)


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"Expected a 2-d array of vectors, got shape {vectors.shape}.")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _knn_graph(vectors: np.ndarray, k: int):
    """The symmetric k-nearest-neighbour connectivity (inner product = cosine) from FAISS."""
    import faiss
    from scipy.sparse import csr_matrix

    n = len(vectors)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    _, neighbours = index.search(vectors, min(n, k + 1))
    rows = np.repeat(np.arange(n), neighbours.shape[1])
    cols = neighbours.reshape(-1)
    keep = cols >= 0
    graph = csr_matrix((np.ones(int(keep.sum()), np.int8), (rows[keep], cols[keep])), shape=(n, n))
    return graph.maximum(graph.T)


def _drop_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Groups under ``min_size`` become noise; the rest are renumbered 0.. by first face."""
    out = np.full(len(labels), NOISE, np.int64)
    values, counts = np.unique(labels[labels >= 0], return_counts=True)
    big = {int(v) for v, c in zip(values, counts, strict=True) if c >= min_size}
    mapping: dict[int, int] = {}
    for i, label in enumerate(labels.tolist()):
        if label in big:
            out[i] = mapping.setdefault(label, len(mapping))
    return out


def cluster(vectors: np.ndarray, config: ClusterConfig | None = None) -> np.ndarray:
    """A label per vector (0.., -1 for faces in no group of at least ``min_size``)."""
    from sklearn.cluster import AgglomerativeClustering

    config = config or ClusterConfig()
    vectors = normalise(vectors)
    n = len(vectors)
    if n == 0:
        return np.zeros(0, np.int64)
    if n == 1:
        return np.array([0 if config.min_size <= 1 else NOISE], np.int64)
    model = AgglomerativeClustering(
        n_clusters=None,
        metric="cosine",
        linkage="average",
        distance_threshold=config.threshold,
        connectivity=_knn_graph(vectors, config.neighbours) if n > config.neighbours + 1 else None,
    )
    return _drop_small(model.fit_predict(vectors).astype(np.int64), config.min_size)


def cluster_incremental(
    known: np.ndarray, known_labels: np.ndarray, new: np.ndarray, config: ClusterConfig | None = None
) -> np.ndarray:
    """Labels for ``known`` then ``new``: clustered known faces keep their label, a new face joins
    the cluster within the threshold (nearest on average), the rest and the known noise are
    clustered again and get fresh labels above the existing ones."""
    config = config or ClusterConfig()
    new = normalise(new) if len(new) else np.zeros((0, known.shape[1] if len(known) else 0), np.float32)
    known = normalise(known) if len(known) else np.zeros((0, new.shape[1]), np.float32)
    known_labels = np.asarray(known_labels, np.int64)
    if len(known_labels) != len(known):
        raise ValueError(f"{len(known)} known vectors but {len(known_labels)} labels.")
    labels = np.concatenate([known_labels, np.full(len(new), NOISE, np.int64)])
    existing = np.unique(known_labels[known_labels >= 0])
    if len(existing) and len(new):
        # The average cosine distance of a face to a cluster is 1 - face . mean(cluster).
        slot = np.searchsorted(existing, known_labels[known_labels >= 0])
        sums = np.zeros((len(existing), known.shape[1]), np.float32)
        np.add.at(sums, slot, known[known_labels >= 0])
        means = sums / np.bincount(slot, minlength=len(existing))[:, None]
        distances = 1.0 - new @ means.T
        best = distances.argmin(axis=1)
        joins = distances[np.arange(len(new)), best] <= config.threshold
        labels[len(known) :][joins] = existing[best[joins]]
    left = np.flatnonzero(labels < 0)
    if len(left):
        vectors = np.concatenate([known, new])[left]
        fresh = cluster(vectors, config)
        start = int(existing.max()) + 1 if len(existing) else 0
        labels[left[fresh >= 0]] = fresh[fresh >= 0] + start
    return labels


def representative_index(vectors: np.ndarray, quality: np.ndarray | None = None) -> int:
    """The face that stands for a cluster: the closest to the cluster's mean (weighted by
    ``quality`` when given, so a sharp frontal face wins over a blurred one that is as close)."""
    vectors = normalise(vectors)
    if not len(vectors):
        raise ValueError("An empty cluster has no representative.")
    closeness = vectors @ vectors.mean(axis=0)
    if quality is not None:
        closeness = closeness * np.asarray(quality, np.float32)
    return int(np.argmax(closeness))
