"""faceengine.index: the backends agree with exact search; labels come back once."""

from __future__ import annotations

import numpy as np
import pytest

from faceengine.errors import ModelMismatch
from faceengine.gallery import Gallery
from faceengine.index import GalleryIndex, IndexConfig, normalize_rows


def clustered(n_labels: int, per_label: int, dim: int = 32, seed: int = 0, noise: float = 0.35):
    rng = np.random.default_rng(seed)
    centres = normalize_rows(rng.normal(size=(n_labels, dim)))
    vectors = np.repeat(centres, per_label, axis=0) + noise * rng.normal(size=(n_labels * per_label, dim)) / np.sqrt(
        dim
    )
    labels = np.repeat(np.arange(n_labels), per_label).tolist()
    return labels, normalize_rows(vectors).astype(np.float32), centres


@pytest.mark.parametrize("backend", ["numpy", "faiss", "hnsw"])
def test_backends_match_the_reference_gallery(backend):
    labels, vectors, _ = clustered(300, 1)
    queries = vectors[:40] + 0.05 * np.random.default_rng(1).normal(size=(40, vectors.shape[1]))
    queries = normalize_rows(queries)
    reference = Gallery("m", vectors.shape[1], labels, vectors).search(queries, k=5)
    index = GalleryIndex("m", vectors.shape[1], labels, vectors, config=IndexConfig(backend=backend))
    assert index.backend == backend and len(index) == 300
    found = index.search(queries, k=5)
    assert [[m.label for m in row] for row in found] == [[m.label for m in row] for row in reference]
    for row, ref in zip(found, reference, strict=True):
        np.testing.assert_allclose([m.similarity for m in row], [m.similarity for m in ref], atol=1e-5)


def test_vectors_are_normalised_so_scores_are_cosines():
    vectors = np.array([[3.0, 0.0], [0.0, 0.5]], np.float32)  # templates are shorter or longer than 1
    index = GalleryIndex("m", 2, ["a", "b"], vectors)
    ((best, second),) = index.search(np.array([[2.0, 2.0]]), k=2)
    assert best.similarity == pytest.approx(np.sqrt(0.5)) and second.similarity == pytest.approx(np.sqrt(0.5))
    assert index.search(np.array([[0.0, 7.0]]), k=1)[0][0].label == "b"


@pytest.mark.parametrize("backend", ["numpy", "faiss", "hnsw"])
def test_several_vectors_per_label_give_each_label_once_with_its_best(backend):
    labels, vectors, centres = clustered(50, 6, seed=3)
    index = GalleryIndex("m", vectors.shape[1], labels, vectors, config=IndexConfig(backend=backend))
    assert index.label_count == 50
    results = index.search(centres[:10], k=4)
    for expected, row in enumerate(results):
        assert len(row) == 4 and len({m.label for m in row}) == 4
        assert row[0].label == expected
        best = max(float(v @ centres[expected]) for v, lab in zip(vectors, labels, strict=True) if lab == expected)
        assert row[0].similarity == pytest.approx(best, abs=1e-5)
        assert [m.similarity for m in row] == sorted((m.similarity for m in row), reverse=True)


def test_auto_picks_the_backend_by_size():
    config = IndexConfig(faiss_min_size=100, hnsw_min_size=1000)
    assert config.choose(99) == "numpy" and config.choose(100) == "faiss" and config.choose(1000) == "hnsw"
    assert IndexConfig(backend="numpy", faiss_min_size=1).choose(10**6) == "numpy"
    with pytest.raises(ValueError):
        IndexConfig(backend="annoy")


def test_empty_index_small_k_and_compatibility():
    empty = GalleryIndex("m", 4)
    assert len(empty) == 0 and empty.search(np.ones((2, 4)), k=3) == [[], []]
    index = GalleryIndex("m", 4, [1, 2], np.eye(4, dtype=np.float32)[:2])
    assert len(index.search(np.ones(4), k=10)[0]) == 2
    index.check_compatible("m", 4)
    with pytest.raises(ModelMismatch, match="cannot be compared"):
        index.check_compatible("other", 4)
    with pytest.raises(ModelMismatch, match="cannot be compared"):
        index.check_compatible("m", 8)
    with pytest.raises(ValueError):
        GalleryIndex("m", 4, [1, 2, 3], np.eye(4, dtype=np.float32)[:2])


def test_numpy_search_in_blocks_gives_the_same_answer(monkeypatch):
    import faceengine.index as module

    labels, vectors, _ = clustered(200, 1, seed=5)
    queries = vectors[::7]
    whole = GalleryIndex("m", vectors.shape[1], labels, vectors, config=IndexConfig(backend="numpy")).search(queries, 3)
    monkeypatch.setattr(module, "_NUMPY_BLOCK", 200 * 3)  # three queries per block
    blocked = GalleryIndex("m", vectors.shape[1], labels, vectors, config=IndexConfig(backend="numpy")).search(
        queries, 3
    )
    assert [[m.label for m in row] for row in blocked] == [[m.label for m in row] for row in whole]
    np.testing.assert_allclose(
        [[m.similarity for m in row] for row in blocked], [[m.similarity for m in row] for row in whole], atol=1e-6
    )
