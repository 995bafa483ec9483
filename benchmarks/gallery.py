"""Gallery search benchmark: build time and time per query for numpy and FAISS, HNSW recall.

Galleries of synthetic unit templates, 192-d (the default model's size), and genuine queries at
cosine ~0.7 to their template, as a new photo of a member is. The templates are either isotropic
random vectors (the worst case for HNSW: no structure to navigate) or, with ``--shape FILE``,
drawn from a Gaussian with the mean and covariance of real embeddings (one LFW photo each of
``--lfw-people`` people, measured once with ``--make-shape FILE``, which needs the engine). Each backend runs through
``faceengine.index.GalleryIndex``, the code the application uses (label bookkeeping
included). Queries are timed one at a time (one face per request) and in batches of 64.
Recall@k of HNSW is the share of the exact top-k it returns.

    python benchmarks/gallery.py --make-shape var/lfw-shape.npz [--lfw-people 2000]
    python benchmarks/gallery.py [--sizes 10000 100000 1000000] [--queries 200] [--shape var/lfw-shape.npz]
                                 [--backends numpy faiss hnsw] [--ef-search 32 64 128 256]
                                 [--threads N] [--json bench-gallery.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Hashable
from pathlib import Path
from typing import cast

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import model_dir  # noqa: E402
from faceengine.index import GalleryIndex, IndexConfig, normalize_rows  # noqa: E402
from faceengine.index_stores import HnswStore  # noqa: E402

BATCH = 64


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def random_units(n: int, dim: int, rng: np.random.Generator, chunk: int = 200_000) -> np.ndarray:
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        out[start:stop] = normalize_rows(rng.standard_normal((stop - start, dim), dtype=np.float32))
    return out


def shaped_units(n: int, shape: dict, rng: np.random.Generator, chunk: int = 200_000) -> np.ndarray:
    """Unit vectors from N(mean, covariance) of real embeddings (eigen-decomposed)."""
    mean, basis = shape["mean"].astype(np.float32), (shape["eigvecs"] * np.sqrt(shape["eigvals"])).T.astype(np.float32)
    out = np.empty((n, len(mean)), np.float32)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        z = rng.standard_normal((stop - start, len(mean)), dtype=np.float32)
        out[start:stop] = normalize_rows(mean + z @ basis)
    return out


def genuine_queries(templates: np.ndarray, count: int, rng: np.random.Generator, cosine: float = 0.7) -> np.ndarray:
    picked = templates[rng.choice(len(templates), size=count, replace=False)]
    noise = random_units(count, templates.shape[1], rng)
    # t + s * n with n orthogonal-ish to t: cos = 1 / sqrt(1 + s^2)
    scale = np.sqrt(1 / cosine**2 - 1)
    return normalize_rows(picked + scale * noise)


def make_shape(path: Path, people: int, seed: int) -> None:
    """Embed one LFW photo each of ``people`` people; save the mean and covariance eigenpairs."""
    import faceengine

    data = Path(os.environ.get("FACESITE_TEST_DATA", ROOT.parent / "shared" / "faces")) / "lfw" / "lfw-deepfunneled"
    folders = sorted(p for p in data.iterdir() if p.is_dir())
    rng = np.random.default_rng(seed)
    chosen = [folders[i] for i in sorted(rng.choice(len(folders), size=min(people, len(folders)), replace=False))]
    recognizer = faceengine.load(model_dir())
    embedded: list[np.ndarray] = []
    for i, folder in enumerate(chosen):
        embedded.append(recognizer.embed_primary(sorted(folder.glob("*.jpg"))[0]).embedding)
        if (i + 1) % 250 == 0:
            print(f"  embedded {i + 1}/{len(chosen)}", flush=True)
    vectors = np.stack(embedded).astype(np.float64)
    mean = vectors.mean(axis=0)
    eigvals, eigvecs = np.linalg.eigh(np.cov(vectors - mean, rowvar=False))
    eigvals = np.clip(eigvals[::-1], 0, None)
    eigvecs = eigvecs[:, ::-1]
    np.savez(path, mean=mean, eigvals=eigvals, eigvecs=eigvecs, people=len(chosen))
    sims = normalize_rows(vectors) @ normalize_rows(vectors).T
    off = sims[~np.eye(len(sims), dtype=bool)]
    share = np.cumsum(eigvals) / eigvals.sum()
    print(
        f"wrote {path}: {len(chosen)} people; cosine between different people {off.mean():.3f} +- {off.std():.3f}; "
        f"{int(np.searchsorted(share, 0.9)) + 1} of {len(eigvals)} components hold 90% of the variance"
    )


def time_queries(index: GalleryIndex, queries: np.ndarray, k: int) -> dict:
    single = []
    for query in queries:
        started = time.perf_counter()
        index.search(query[None], k=k)
        single.append(time.perf_counter() - started)
    batches = []
    for start in range(0, len(queries) - BATCH + 1, BATCH):
        started = time.perf_counter()
        index.search(queries[start : start + BATCH], k=k)
        batches.append((time.perf_counter() - started) / BATCH)
    return {
        "query_ms_median": 1000 * statistics.median(single),
        "query_ms_p95": 1000 * float(np.percentile(single, 95)),
        "batched_ms_per_query": 1000 * statistics.median(batches) if batches else float("nan"),
    }


def top_labels(index: GalleryIndex, queries: np.ndarray, k: int) -> list[list[Hashable]]:
    return [[m.label for m in row] for row in index.search(queries, k=k)]


def recall(found: list[list[Hashable]], exact: list[list[Hashable]], k: int) -> float:
    hits = sum(len(set(f[:k]) & set(e[:k])) for f, e in zip(found, exact, strict=True))
    return hits / (k * len(exact))


def run_size(n: int, args, rng: np.random.Generator) -> list[dict]:
    print(
        f"\n== {n:,} templates x {args.dim}-d ({'shaped like ' + str(args.shape) if args.shape else 'isotropic'})",
        flush=True,
    )
    if args.shape:
        shape = dict(np.load(args.shape))
        if len(shape["mean"]) != args.dim:
            raise SystemExit(f"{args.shape} is {len(shape['mean'])}-d, not {args.dim}-d")
        templates = shaped_units(n, shape, rng)
    else:
        templates = random_units(n, args.dim, rng)
    queries = genuine_queries(templates, args.queries, rng)
    exact_index = GalleryIndex("q", args.dim, range(n), templates, config=IndexConfig(backend="numpy"))
    # The labels are range(n): each is its template's row.
    nearest = [cast(int, row[0].label) for row in exact_index.search(queries, 1)]
    genuine = np.einsum("ij,ij->i", queries, templates[nearest])
    sample = templates[rng.choice(n, size=min(n, 2000), replace=False)]
    others = (sample @ sample.T)[~np.eye(len(sample), dtype=bool)]
    print(
        f"  genuine cosine (query to its best template) median {np.median(genuine):.3f}; "
        f"between templates {others.mean():.3f} +- {others.std():.3f}",
        flush=True,
    )
    labels = list(range(n))
    rows, exact = [], None
    backends = list(args.backends)
    # Exact ground truth comes from the first exact backend; make sure one runs.
    if "hnsw" in backends and not ({"numpy", "faiss"} & set(backends)):
        backends.insert(0, "faiss")
    for backend in sorted(backends, key=["numpy", "faiss", "hnsw"].index):
        config = IndexConfig(
            backend=backend,
            hnsw_m=args.hnsw_m,
            hnsw_ef_construction=args.ef_construction,
            hnsw_ef_search=args.ef_search[0],
        )
        gc.collect()
        before = rss_mb()
        index = GalleryIndex("bench", args.dim, labels, templates, config=config)
        memory = rss_mb() - before
        print(f"  {backend}: built in {index.build_seconds:.2f} s (+{memory:.0f} MB)", flush=True)
        settings = [None] if backend != "hnsw" else args.ef_search
        for ef in settings:
            if ef is not None:
                store = index._store
                if not isinstance(store, HnswStore):
                    raise SystemExit(f"the {backend} index of {n} templates has no HNSW graph to tune")
                store.set_ef_search(ef)
            row = {
                "size": n,
                "data": "shaped" if args.shape else "isotropic",
                "backend": backend if ef is None else f"hnsw ef={ef}",
                "build_s": index.build_seconds,
                "memory_mb": memory,
            }
            row.update(time_queries(index, queries, args.k))
            found = top_labels(index, queries, args.k)
            if exact is None:
                exact = found
            row["recall@1"] = recall(found, exact, 1)
            row[f"recall@{args.k}"] = recall(found, exact, args.k)
            rows.append(row)
            print(
                f"    {row['backend']}: {row['query_ms_median']:.3f} ms/query "
                f"({row['batched_ms_per_query']:.3f} batched), recall@1 {row['recall@1']:.4f}",
                flush=True,
            )
        del index
    del templates
    gc.collect()
    return rows


def print_table(rows: list[dict], k: int) -> None:
    headers = [
        "templates",
        "data",
        "backend",
        "build s",
        "memory MB",
        "ms/query",
        "p95 ms",
        f"ms/query (batch {BATCH})",
        "recall@1",
        f"recall@{k}",
    ]
    print("\n| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    for r in rows:
        cells = [
            f"{r['size']:,}",
            r["data"],
            r["backend"],
            f"{r['build_s']:.2f}",
            f"{r['memory_mb']:.0f}",
            f"{r['query_ms_median']:.3f}",
            f"{r['query_ms_p95']:.3f}",
            f"{r['batched_ms_per_query']:.3f}",
            f"{r['recall@1']:.4f}",
            f"{r[f'recall@{k}']:.4f}",
        ]
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000], help="Gallery sizes (templates)."
    )
    parser.add_argument("--dim", type=int, default=192, help="Embedding dimension (default model: 192).")
    parser.add_argument("--queries", type=int, default=200, help="Queries per size.")
    parser.add_argument("--k", type=int, default=10, help="Results per query (recall@k).")
    parser.add_argument("--backends", nargs="+", default=["numpy", "faiss", "hnsw"], choices=["numpy", "faiss", "hnsw"])
    parser.add_argument("--hnsw-m", type=int, default=IndexConfig.hnsw_m, help="HNSW links per node.")
    parser.add_argument("--ef-construction", type=int, default=IndexConfig.hnsw_ef_construction)
    parser.add_argument(
        "--ef-search",
        type=int,
        nargs="+",
        default=[32, 64, IndexConfig.hnsw_ef_search, 256],
        help="HNSW efSearch values to measure (the first is also used while building).",
    )
    parser.add_argument("--threads", type=int, default=None, help="FAISS OpenMP threads (default: all cores).")
    parser.add_argument("--shape", type=Path, help="Draw templates shaped like real embeddings (--make-shape's file).")
    parser.add_argument("--make-shape", type=Path, help="Embed LFW photos, save their mean/covariance here, and exit.")
    parser.add_argument("--lfw-people", type=int, default=2000, help="People (one photo each) for --make-shape.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, dest="json_out", help="Write the rows here as JSON.")
    args = parser.parse_args()
    if args.make_shape:
        make_shape(args.make_shape, args.lfw_people, args.seed)
        return

    import faiss

    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    print(
        f"faiss {faiss.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
        f"faiss threads {faiss.omp_get_max_threads()}; HNSW M={args.hnsw_m} "
        f"efConstruction={args.ef_construction}"
    )
    rng = np.random.default_rng(args.seed)
    rows = []
    for n in args.sizes:
        rows.extend(run_size(n, args, rng))
    print_table(rows, args.k)
    if args.json_out:
        payload = {
            "dim": args.dim,
            "shape": str(args.shape) if args.shape else None,
            "queries": args.queries,
            "k": args.k,
            "cpus": os.cpu_count(),
            "faiss_threads": faiss.omp_get_max_threads(),
            "hnsw_m": args.hnsw_m,
            "ef_construction": args.ef_construction,
            "rows": rows,
        }
        args.json_out.write_text(json.dumps(payload, indent=2))
        print(f"wrote {args.json_out}")


if __name__ == "__main__":
    main()
