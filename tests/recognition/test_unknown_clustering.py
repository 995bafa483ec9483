"""faceengine.clustering on real LFW embeddings: pure clusters, strangers seen once left out,
the incremental step agrees with the batch one; and its contract on bad input."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from faceengine.clustering import (
    NOISE,
    ClusterConfig,
    cluster,
    cluster_incremental,
    representative_index,
)
from faceengine.embedders.registry import DEFAULT_MODEL
from tests.fakes import lfw_photos

PEOPLE = ("Colin_Powell", "Tony_Blair", "Hugo_Chavez", "Ariel_Sharon", "Serena_Williams", "Vladimir_Putin")
PER_PERSON = 5
SEEN_ONCE = ("Aaron_Eckhart", "Abdullah_Gul", "Adam_Sandler", "Alan_Greenspan", "Al_Gore", "Amelie_Mauresmo")


@pytest.fixture(scope="module")
def lfw_vectors(lfw_dir, real_recognizer):
    labels, vectors = [], []
    for name in PEOPLE:
        for path in lfw_photos(lfw_dir, name)[:PER_PERSON]:
            labels.append(name)
            vectors.append(real_recognizer.embed_primary(path).embedding)
    for name in SEEN_ONCE:
        labels.append(name)
        vectors.append(real_recognizer.embed_primary(lfw_photos(lfw_dir, name)[0]).embedding)
    return np.stack(vectors), labels


def _purity_completeness(found: np.ndarray, labels: list[str]) -> tuple[float, float]:
    groups: dict[int, list[str]] = {}
    for label, person in zip(found.tolist(), labels, strict=True):
        if label != NOISE:
            groups.setdefault(label, []).append(person)
    clustered = sum(len(g) for g in groups.values())
    purity = sum(Counter(g).most_common(1)[0][1] for g in groups.values()) / clustered
    largest = [
        max(Counter(found[i] for i, p in enumerate(labels) if p == name and found[i] != NOISE).values(), default=0)
        for name in PEOPLE
    ]
    return purity, sum(largest) / (len(PEOPLE) * PER_PERSON)


@pytest.mark.slow
def test_lfw_faces_cluster_into_pure_groups(lfw_vectors):
    vectors, labels = lfw_vectors
    found = cluster(vectors, ClusterConfig.for_model(DEFAULT_MODEL))
    purity, completeness = _purity_completeness(found, labels)
    assert purity == 1.0
    assert completeness >= 0.8
    seen_once = [found[i] for i, p in enumerate(labels) if p in SEEN_ONCE]
    assert sum(label != NOISE for label in seen_once) <= 1


@pytest.mark.slow
def test_incremental_clustering_keeps_labels_and_stays_pure(lfw_vectors):
    vectors, labels = lfw_vectors
    config = ClusterConfig.for_model(DEFAULT_MODEL)
    order = np.random.default_rng(0).permutation(len(vectors))
    half = len(order) // 2
    first = cluster(vectors[order[:half]], config)
    both = cluster_incremental(vectors[order[:half]], first, vectors[order[half:]], config)
    # Faces clustered before keep their cluster.
    assert np.array_equal(both[:half][first != NOISE], first[first != NOISE])
    found = np.full(len(vectors), NOISE)
    found[order] = both
    purity, completeness = _purity_completeness(found, labels)
    assert purity == 1.0 and completeness >= 0.8


def test_the_threshold_follows_the_model():
    config = ClusterConfig.for_model(DEFAULT_MODEL)
    assert config.threshold == pytest.approx(1 - DEFAULT_MODEL.verification_threshold - 0.16)
    for bad in ({"threshold": 0.0}, {"threshold": 2.5}, {"min_size": 0}):
        with pytest.raises(ValueError):
            ClusterConfig(**bad)


def test_small_and_odd_inputs():
    assert cluster(np.zeros((0, 4), np.float32)).tolist() == []
    assert cluster(np.ones((1, 4), np.float32)).tolist() == [NOISE]
    twins = np.array([[1, 0, 0], [0.99, 0.05, 0], [0, 1, 0]], np.float32)
    assert cluster(twins).tolist() == [0, 0, NOISE]
    with pytest.raises(ValueError):
        cluster(np.ones(3, np.float32))
    with pytest.raises(ValueError):
        cluster_incremental(twins, np.array([0]), twins)
    # A new face near a cluster joins it; a pair of new look-alikes forms a new cluster.
    labels = cluster_incremental(twins[:2], np.array([5, 5]), np.array([[1, 0.02, 0], [0, 0, 1], [0, 0.02, 1]]))
    assert labels.tolist() == [5, 5, 5, 6, 6]
    assert representative_index(np.array([[1, 0], [0.8, 0.6], [0.6, 0.8]], np.float32)) == 1
