"""IVF parameters at a million templates, measured side by side with FAISS directly.

The gallery is the one ``benchmarks/gallery_scale.py`` builds (the LFW people with two photos or
more, template: the mean of all photos but the last, plus synthetic templates from a Gaussian
with the mean and covariance of the real LFW embeddings); the probes are those people's last
photos (real embeddings). For each number of lists one ``IVF{nlist},{codec}`` index per codec
(inner product) is trained as the product trains it (``--train-per-list`` vectors a list,
``--kmeans-rounds`` k-means rounds), then every (nlist, codec, nprobe, threads) cell is timed one
query at a time, the cells interleaved in rounds over the same probes, so that other load on
the machine falls on every cell alike. Recall@1 is against exact search on all probes.

    python benchmarks/ivf_tuning.py [--templates 1000000] [--nlist 2000 4000 8000]
        [--codecs Flat SQ8] [--share 0.064 0.08 0.096 0.112 0.128] [--threads 1 2]
        [--kmeans-rounds 10] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.gallery_scale import exact_top1, lfw_embeddings, pct, real_gallery, shaped  # noqa: E402
from faceengine.index_stores import KMEANS_ROUNDS, TRAIN_PER_LIST  # noqa: E402


def build(gallery: np.ndarray, nlist: int, codec: str, train_per_list: int, kmeans_rounds: int) -> tuple:
    """An IVF index over the gallery, trained as ``faceengine.index_stores`` trains it (a fixed
    sample of ``train_per_list`` vectors a list, ``kmeans_rounds`` rounds): (index, train
    seconds, add seconds)."""
    import faiss

    index = faiss.index_factory(gallery.shape[1], f"IVF{nlist},{codec}", faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = kmeans_rounds  # type: ignore[attr-defined]
    sample = min(len(gallery), train_per_list * nlist)
    picked = np.sort(np.random.default_rng(0).choice(len(gallery), sample, replace=False))
    started = time.perf_counter()
    index.train(gallery[picked])
    trained = time.perf_counter()
    index.add_with_ids(gallery, np.arange(len(gallery), dtype=np.int64))
    return index, trained - started, time.perf_counter() - trained


def run(args: argparse.Namespace) -> dict:
    import faiss

    rng = np.random.default_rng(args.seed)
    lfw_vectors, people, _photos = lfw_embeddings()
    real_templates, probes, _names = real_gallery(lfw_vectors, people)
    gallery = np.concatenate([real_templates, shaped(args.templates - len(real_templates), lfw_vectors, rng)])
    exact = exact_top1(gallery, probes)
    own = exact == np.arange(len(probes))  # probe i's own template is row i
    print(f"{len(gallery)} templates, {len(probes)} real probes", flush=True)

    indexes: dict[tuple[int, str], object] = {}
    builds = {}
    for nlist in args.nlist:
        for codec in args.codecs:
            faiss.omp_set_num_threads(os.cpu_count() or 1)
            index, train_s, add_s = build(gallery, nlist, codec, args.train_per_list, args.kmeans_rounds)
            indexes[(nlist, codec)] = index
            builds[(nlist, codec)] = {"train_s": round(train_s, 1), "add_s": round(add_s, 1)}
            print(f"  IVF{nlist},{codec}: train {train_s:.1f} s, add {add_s:.1f} s", flush=True)

    # nprobe as a share of the lists, so that every nlist scans about the same vectors a cell.
    cells = [
        (nlist, codec, max(1, round(share * nlist)), threads)
        for nlist in args.nlist
        for codec in args.codecs
        for share in args.share
        for threads in args.threads
    ]
    found: dict[tuple, np.ndarray] = {}
    for nlist, codec, nprobe, _threads in cells:
        if (nlist, codec, nprobe) not in found:
            indexes[(nlist, codec)].nprobe = nprobe  # type: ignore[attr-defined]
            found[(nlist, codec, nprobe)] = indexes[(nlist, codec)].search(probes, 1)[1][:, 0]  # type: ignore[attr-defined]
    timed = np.random.default_rng(1).permutation(len(probes))[: args.timed]
    times: dict[tuple, list[float]] = {cell: [] for cell in cells}
    rounds = np.array_split(timed, args.rounds)
    for r, chunk in enumerate(rounds):
        order = cells[r % len(cells) :] + cells[: r % len(cells)]  # each round starts elsewhere
        for cell in order:
            nlist, codec, nprobe, threads = cell
            faiss.omp_set_num_threads(threads)
            index = indexes[(nlist, codec)]
            index.nprobe = nprobe  # type: ignore[attr-defined]
            # One query: FAISS splits it over threads only by its lists (parallel_mode 1).
            index.parallel_mode = 0 if threads == 1 else 1  # type: ignore[attr-defined]
            for i in chunk:
                query = probes[i : i + 1]
                t0 = time.perf_counter()
                index.search(query, 1)  # type: ignore[attr-defined]
                times[cell].append((time.perf_counter() - t0) * 1000)
        print(f"  round {r + 1}/{len(rounds)}", flush=True)

    rows = []
    for cell in cells:
        nlist, codec, nprobe, threads = cell
        agree = found[(nlist, codec, nprobe)] == exact
        cell_times = times[cell]
        rows.append(
            {
                "nlist": nlist,
                "codec": codec,
                "nprobe": nprobe,
                "threads": threads,
                "scanned_share": round(nprobe / nlist, 4),
                "search_ms_p50": round(pct(cell_times, 50), 3),
                "search_ms_p95": round(pct(cell_times, 95), 3),
                "recall_at_1": round(float(np.mean(agree)), 4),
                "recall_at_1_own": round(float(np.mean(agree[own])), 4),
                **builds[(nlist, codec)],
            }
        )
    return {
        "templates": len(gallery),
        "probes": len(probes),
        "timed_probes": len(timed),
        "train_per_list": args.train_per_list,
        "kmeans_rounds": args.kmeans_rounds,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "rows": rows,
    }


def print_table(result: dict) -> None:
    head = "nlist codec  nprobe threads share   p50_ms   p95_ms  recall@1  own     train_s add_s"
    print(head)
    for row in result["rows"]:
        print(
            f"{row['nlist']:>5} {row['codec']:<6} {row['nprobe']:>6} {row['threads']:>7} {row['scanned_share']:.3f} "
            f"{row['search_ms_p50']:>8.2f} {row['search_ms_p95']:>8.2f} {row['recall_at_1']:>9.4f} "
            f"{row['recall_at_1_own']:.4f}  {row['train_s']:>7} {row['add_s']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--templates", type=int, default=1_000_000)
    parser.add_argument("--nlist", nargs="+", type=int, default=[2000, 4000, 8000])
    parser.add_argument("--codecs", nargs="+", default=["Flat", "SQ8"], help="FAISS codecs: Flat, SQ8, SQfp16, ...")
    parser.add_argument(
        "--share", nargs="+", type=float, default=[0.064, 0.08, 0.096, 0.112, 0.128], help="nprobe / nlist"
    )
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="faiss.omp_set_num_threads per cell")
    parser.add_argument("--train-per-list", type=int, default=TRAIN_PER_LIST)
    parser.add_argument("--kmeans-rounds", type=int, default=KMEANS_ROUNDS)
    parser.add_argument("--timed", type=int, default=300, help="probes timed one at a time, per cell")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args)
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
