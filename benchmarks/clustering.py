"""Clustering of unknown faces on LFW: purity, completeness, clusters, noise share, time.

The faces are those of LFW people nobody enrolled: every photo of a seeded sample of the
people with at least 3 photos, plus photos of people with only one (singletons, the noise a
real photo collection has: strangers seen once). Each photo is embedded through the engine
(``faceengine.load`` then ``embed_primary``); the embeddings are cached in ``var/cache/`` (npz)
because embedding them takes minutes and the clustering only seconds.

Purity: over every cluster, the share of its faces that belong to its majority person
(weighted by size). Completeness: over every person with at least 3 photos, the share of their
faces in their largest cluster. Noise share: faces left in no cluster (a singleton is right
to be left out). Each threshold of ``--thresholds`` is run in one batch and, to measure the
incremental path the application takes, in ``--steps`` arrivals (``cluster_incremental``).

    python benchmarks/clustering.py [--people-faces 1800] [--singletons 400] [--seed 0]
                                    [--thresholds 0.35 0.40 0.45 0.50 0.55] [--steps 10]
                                    [--json var/bench-clustering.json]
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import model_dir, print_table, test_data_dir, write_json  # noqa: E402


def pick_faces(people_faces: int, singletons: int, seed: int) -> list[tuple[str, Path]]:
    """(person, photo) pairs: all photos of sampled people with >= 3 photos, then singletons."""
    root = test_data_dir() / "lfw" / "lfw-deepfunneled"
    if not root.is_dir():
        raise SystemExit(f"{root} not found: set FACESITE_TEST_DATA to the shared faces folder")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    photos = {f.name: sorted(f.glob("*.jpg")) for f in folders}
    rng = random.Random(seed)
    many = [name for name, files in photos.items() if len(files) >= 3]
    ones = [name for name, files in photos.items() if len(files) == 1]
    rng.shuffle(many)
    rng.shuffle(ones)
    picked: list[tuple[str, Path]] = []
    for name in many:
        if len(picked) >= people_faces:
            break
        picked.extend((name, path) for path in photos[name])
    picked.extend((name, photos[name][0]) for name in ones[:singletons])
    return picked


def embeddings(faces: list[tuple[str, Path]], cache: Path) -> tuple[np.ndarray, str]:
    """The embedding of every photo, from the cache when it holds exactly these photos."""
    paths = [str(p.relative_to(test_data_dir())) for _, p in faces]
    if cache.is_file():
        stored = np.load(cache, allow_pickle=False)
        if list(stored["paths"]) == paths:
            return stored["vectors"], str(stored["model"])
    import faceengine

    recognizer = faceengine.load(model_dir())
    vectors = np.empty((len(faces), recognizer.dim), np.float32)
    started = time.perf_counter()
    for i, (_, path) in enumerate(faces):
        vectors[i] = recognizer.embed_primary(path).embedding
        if i % 250 == 249:
            print(f"embedded {i + 1}/{len(faces)} in {time.perf_counter() - started:.0f} s", flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, paths=np.array(paths), vectors=vectors, model=np.array(recognizer.model_name))
    return vectors, recognizer.model_name


def scores(labels: np.ndarray, people: list[str]) -> dict:
    """Purity, completeness, cluster count and noise share of one labelling (-1 = no cluster)."""
    clusters: dict[int, list[str]] = {}
    for label, person in zip(labels.tolist(), people, strict=True):
        if label >= 0:
            clusters.setdefault(label, []).append(person)
    clustered = sum(len(members) for members in clusters.values())
    majority = sum(Counter(members).most_common(1)[0][1] for members in clusters.values())
    counts = Counter(people)
    repeated = [person for person, n in counts.items() if n >= 3]
    by_person: dict[str, Counter] = {person: Counter() for person in repeated}
    for label, person in zip(labels.tolist(), people, strict=True):
        if person in by_person and label >= 0:
            by_person[person][label] += 1
    in_largest = sum(max(c.values(), default=0) for c in by_person.values())
    singles = [i for i, p in enumerate(people) if counts[p] == 1]
    return {
        "purity": majority / clustered if clustered else 1.0,
        "completeness": in_largest / sum(counts[p] for p in repeated),
        "clusters": len(clusters),
        "noise_share": float(np.mean(labels < 0)),
        "singletons_clustered": int(sum(labels[i] >= 0 for i in singles)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people-faces", type=int, default=1800)
    parser.add_argument("--singletons", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--thresholds", type=float, nargs="*", default=None)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "cache" / "clustering-lfw.npz")
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench-clustering.json")
    args = parser.parse_args()

    from faceengine.clustering import ClusterConfig, cluster, cluster_incremental
    from faceengine.embedders.registry import DEFAULT_MODEL

    faces = pick_faces(args.people_faces, args.singletons, args.seed)
    people = [name for name, _ in faces]
    started = time.perf_counter()
    vectors, model = embeddings(faces, args.cache)
    print(f"{len(faces)} faces of {len(set(people))} people, {model}, ready in {time.perf_counter() - started:.1f} s")

    default = ClusterConfig.for_model(DEFAULT_MODEL)
    thresholds = args.thresholds or sorted({0.35, 0.40, default.threshold, 0.50, 0.55})
    rows, results = [], []
    for threshold in thresholds:
        config = ClusterConfig(threshold=threshold, min_size=default.min_size)
        for mode in ("batch", "incremental"):
            started = time.perf_counter()
            if mode == "batch":
                labels = cluster(vectors, config)
            else:
                labels = np.full(len(vectors), -1, np.int64)
                bounds = np.linspace(0, len(vectors), args.steps + 1).astype(int)
                order = np.random.default_rng(args.seed).permutation(len(vectors))
                for lo, hi in itertools.pairwise(bounds):
                    known = order[:lo]
                    new = order[lo:hi]
                    labels[order[:hi]] = cluster_incremental(vectors[known], labels[known], vectors[new], config)
            seconds = time.perf_counter() - started
            found = scores(labels, people)
            found.update(threshold=threshold, mode=mode, seconds=seconds)
            results.append(found)
            rows.append(
                [
                    f"{threshold:.2f}",
                    mode,
                    f"{found['purity']:.3f}",
                    f"{found['completeness']:.3f}",
                    found["clusters"],
                    f"{found['noise_share']:.3f}",
                    found["singletons_clustered"],
                    f"{seconds:.2f}",
                ]
            )
    print_table(
        ["distance", "mode", "purity", "completeness", "clusters", "noise share", "singletons clustered", "time s"],
        rows,
    )
    payload = {
        "faces": len(faces),
        "people": len(set(people)),
        "people_with_3_or_more": sum(1 for n in Counter(people).values() if n >= 3),
        "singletons": sum(1 for n in Counter(people).values() if n == 1),
        "model": model,
        "default_threshold": default.threshold,
        "min_size": default.min_size,
        "steps": args.steps,
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.json, payload)


if __name__ == "__main__":
    main()
