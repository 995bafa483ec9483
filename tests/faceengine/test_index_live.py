"""faceengine.index changes in place: removals never come back, additions are found, every
backend agrees with a fresh exact index after the same changes; snapshots round-trip and a
damaged one is refused."""

from __future__ import annotations

import numpy as np
import pytest

from faceengine.index import GalleryIndex, IndexConfig, normalize_rows
from faceengine.snapshot import SnapshotError, read_snapshot, snapshot_info, write_snapshot

BACKENDS = ["numpy", "faiss", "ivf", "ivf_sq8", "hnsw"]
DIM = 32


def units(n: int, seed: int) -> np.ndarray:
    return normalize_rows(np.random.default_rng(seed).normal(size=(n, DIM)))


def config(backend: str) -> IndexConfig:
    # Every list searched: IVF is then exact up to quantisation, so answers can be compared.
    return IndexConfig(backend=backend, ivf_nprobe=10_000, hnsw_compact_fraction=0.3)


def top1(index: GalleryIndex, queries: np.ndarray) -> list:
    return [row[0].label if row else None for row in index.search(queries, k=1)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_changes_in_place_match_a_fresh_index(backend):
    vectors = units(2000, 0)
    ids = list(range(1, 2001))
    index = GalleryIndex("m", DIM, ids, vectors, ids=ids, config=config(backend))
    assert index.identity and index.backend == backend
    # Remove 300 members, give 200 others a new template, add 100 new members.
    removed = list(range(1, 301))
    moved = list(range(301, 501))
    added = list(range(5001, 5101))
    new_vectors = units(300, 1)
    index.replace_labels(removed + moved, moved + added, moved + added, new_vectors)
    assert len(index) == 2000 - 300 + 100 and index.label_count == len(index)
    assert index.labels == sorted(set(range(501, 2001)) | set(moved) | set(added))
    live = {i: v for i, v in zip(ids, vectors, strict=True) if i > 500}
    live.update(zip(moved + added, new_vectors, strict=True))
    fresh = GalleryIndex("m", DIM, list(live), np.stack(list(live.values())), config=IndexConfig(backend="numpy"))
    # Probes: the old vectors of removed and moved members, and the new ones.
    probes = np.concatenate([vectors[:500], new_vectors])
    found = top1(index, probes)
    assert not set(found) & set(removed)
    agreement = np.mean([a == b for a, b in zip(found, top1(fresh, probes), strict=True)])
    assert agreement >= (1.0 if backend in ("numpy", "faiss") else 0.97)
    # Each new vector finds its own member.
    assert np.mean([f == i for f, i in zip(found[500:], moved + added, strict=True)]) >= 0.98


@pytest.mark.parametrize("backend", BACKENDS)
def test_samples_of_a_label_are_replaced_together(backend):
    base = units(50, 2)
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(50), 4).tolist()
    vectors = normalize_rows(np.repeat(base, 4, axis=0) + 0.1 * rng.normal(size=(200, DIM)))
    ids = list(range(1000, 1200))  # embedding ids, unlike the labels
    index = GalleryIndex("m", DIM, labels, vectors, ids=ids, config=config(backend))
    assert not index.identity and index.label_count == 50
    # Member 7 gets two new faces instead of its four; member 8 loses all of its faces.
    new = normalize_rows(units(2, 4))
    index.replace_labels([7, 8], [7, 7], [5000, 5001], new)
    assert index.label_count == 49 and len(index) == 200 - 8 + 2
    assert top1(index, new) == [7, 7]
    assert 8 not in {m.label for row in index.search(base[[7, 8]], k=5) for m in row}
    results = index.search(base[:20], k=3)
    assert all(len({m.label for m in row}) == len(row) for row in results)


def test_an_identity_index_refuses_vectors_with_other_ids():
    index = GalleryIndex("m", DIM, [1, 2], units(2, 5), ids=[1, 2])
    with pytest.raises(ValueError, match="one vector per label"):
        index.replace_labels([1], [1], [99], units(1, 6))


def test_hnsw_tombstones_are_compacted():
    vectors = units(400, 7)
    index = GalleryIndex("m", DIM, list(range(400)), vectors, ids=list(range(400)), config=config("hnsw"))
    store = index._store
    index.replace_labels(list(range(100)))  # a quarter removed: under 0.3, kept as tombstones
    assert store.tombstones == 100 and store.compactions == 0
    assert not set(top1(index, vectors[:100])) & set(range(100))
    index.replace_labels(list(range(100, 150)))  # past 0.3: the graph is rebuilt
    assert store.compactions == 1 and store.tombstones == 0 and len(index) == 250
    assert top1(index, vectors[150:160]) == list(range(150, 160))


def test_the_size_decides_when_to_rebuild():
    vectors = units(1000, 8)
    auto = IndexConfig(ivf_min_size=1500)
    index = GalleryIndex("m", DIM, list(range(1000)), vectors, ids=list(range(1000)), config=auto)
    assert index.backend == "numpy" and not index.needs_rebuild()
    more = units(600, 9)
    index.replace_labels([], list(range(2000, 2600)), list(range(2000, 2600)), more)
    assert index.needs_rebuild()  # 1600 vectors: IVF's size, and far from the build
    ivf = GalleryIndex("m", DIM, list(range(1000)), vectors, ids=list(range(1000)), config=config("ivf"))
    ivf.replace_labels(list(range(600)))
    assert ivf.needs_rebuild()  # IVF trained on 1000, now 400: its lists no longer fit


@pytest.mark.parametrize("backend", BACKENDS)
def test_snapshot_round_trip(tmp_path, backend):
    vectors = units(1500, 10)
    labels = (np.arange(1500) // 3).tolist()
    index = GalleryIndex("m", DIM, labels, vectors, ids=list(range(1500)), config=config(backend))
    index.replace_labels([0, 1])
    path = tmp_path / "g.snapshot"
    info = write_snapshot(path, index, seq=42, epoch="e1", match="sample")
    assert info.seq == 42 and snapshot_info(path).vectors == len(index) == 1494
    loaded, read = read_snapshot(path, model_name="m", dim=DIM, match="sample", config=config(backend))
    assert read.seq == 42 and read.epoch == "e1" and loaded.backend == backend
    assert len(loaded) == len(index) and loaded.label_count == index.label_count
    queries = vectors[::50]
    assert [[m.label for m in r] for r in loaded.search(queries, 3)] == [
        [m.label for m in r] for r in index.search(queries, 3)
    ]
    loaded.replace_labels([5])  # a restored index takes changes too
    assert 5 not in top1(loaded, vectors[15:18])
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_a_damaged_or_foreign_snapshot_is_refused(tmp_path):
    vectors = units(100, 11)
    index = GalleryIndex("m", DIM, list(range(100)), vectors, ids=list(range(100)))
    path = tmp_path / "g.snapshot"
    write_snapshot(path, index, seq=1, epoch="e", match="template")
    ok = {"model_name": "m", "dim": DIM, "match": "template", "config": IndexConfig()}
    with pytest.raises(SnapshotError, match="holds the m"):
        read_snapshot(path, **{**ok, "model_name": "other"})
    with pytest.raises(SnapshotError, match="holds the m"):
        read_snapshot(path, **{**ok, "dim": 64})
    data = bytearray(path.read_bytes())
    data[-7] ^= 0xFF  # one flipped byte in the vectors
    path.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="checksum") as caught:
        read_snapshot(path, **ok)
    assert caught.value.code == "snapshot_invalid"
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(SnapshotError, match="truncated"):
        read_snapshot(path, **ok)
    path.write_bytes(b"not a snapshot at all")
    with pytest.raises(SnapshotError, match="not a gallery snapshot"):
        read_snapshot(path, **ok)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_empty_index_round_trips_and_then_takes_vectors(tmp_path, backend):
    path = tmp_path / "empty.snapshot"
    write_snapshot(path, GalleryIndex("m", DIM, config=config(backend)), seq=0, epoch="e", match="template")
    loaded, _ = read_snapshot(path, model_name="m", dim=DIM, match="template", config=config(backend))
    assert len(loaded) == 0 and loaded.search(units(1, 12), k=1) == [[]]
    vectors = units(100, 13)
    loaded.replace_labels([], list(range(100)), list(range(100)), vectors)
    assert top1(loaded, vectors[:5]) == [0, 1, 2, 3, 4]
