"""Embedding speed, side by side: the default TFLite file vs its Keras import (or any models).

    .venv/bin/python benchmarks/embedder_backends.py [--models mobilefacenet,mobilefacenet-keras]
        [--batch-sizes 1,8,32] [--repeat 7] [--threads N] [--flip] [--json artifacts/embedder-backends.json]

    e.g. --models mobilefacenet,sface,mobilefacenet_sface: the cost per face of each choice of model.

Each model is loaded through the registry from FACESITE_MODEL_DIR (var/models by default), as the
engine loads it. The same 112x112 faces go through every model in turn, interleaved batch by
batch so a busy machine slows them alike; the first call of each batch size is a warm-up. Printed:
median wall ms per batch and per face, median CPU ms per face (this process, all threads), and
the smallest cosine between each model's vectors and the first model's (the import must give
the same vectors; "-" for a model of another vector space). Aligned crops are not needed for
speed, so the faces are random pixels.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import print_table, write_json  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mobilefacenet,mobilefacenet-keras")
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--model-dir", type=Path, default=Path(os.environ.get("FACESITE_MODEL_DIR", ROOT / "var" / "models"))
    )
    parser.add_argument("--threads", type=int, default=None, help="Threads per backend (default: its own).")
    parser.add_argument(
        "--flip", action="store_true", help="Embed each face and its mirror image, as with FACESITE_FLIP."
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from faceengine.embedders.registry import build_embedder, load_model_spec

    names = args.models.split(",")
    sizes = [int(v) for v in args.batch_sizes.split(",")]
    embedders = {
        name: build_embedder(load_model_spec(name, args.model_dir), args.model_dir, num_threads=args.threads)
        for name in names
    }
    faces = np.random.default_rng(0).integers(0, 256, (max(sizes), 112, 112, 3), dtype=np.uint8)
    reference = embedders[names[0]].embed(faces)
    # Vectors of different models live in different spaces: only a same-size model is compared.
    agreement = {
        name: float(np.einsum("ij,ij->i", e.embed(faces), reference).min()) if e.dim == reference.shape[1] else None
        for name, e in embedders.items()
    }

    wall: dict[tuple[str, int], list[float]] = {}
    cpu: dict[tuple[str, int], list[float]] = {}
    for size in sizes:
        batch = faces[:size]
        for embedder in embedders.values():
            embedder.embed(batch, flip=args.flip)  # warm-up: interpreter per batch size, graph tracing
        for _ in range(args.repeat):
            for name, embedder in embedders.items():
                t0, c0 = time.perf_counter(), time.process_time()
                embedder.embed(batch, flip=args.flip)
                wall.setdefault((name, size), []).append(time.perf_counter() - t0)
                cpu.setdefault((name, size), []).append(time.process_time() - c0)

    rows, results = [], []
    for size in sizes:
        for name in names:
            batch_ms = 1000 * statistics.median(wall[(name, size)])
            cpu_ms = 1000 * statistics.median(cpu[(name, size)])
            rows.append(
                [
                    name,
                    type(embedders[name]).__name__,
                    size,
                    batch_ms,
                    batch_ms / size,
                    cpu_ms / size,
                    "-" if agreement[name] is None else f"{agreement[name]:.6f}",
                ]
            )
            results.append(
                {
                    "model": name,
                    "backend": type(embedders[name]).__name__,
                    "batch": size,
                    "ms_per_batch": batch_ms,
                    "ms_per_face": batch_ms / size,
                    "cpu_ms_per_face": cpu_ms / size,
                    "min_cosine_vs_first": agreement[name],
                }
            )
    print_table(["model", "backend", "batch", "ms/batch", "ms/face", "CPU ms/face", f"min cosine vs {names[0]}"], rows)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_json(
            args.json,
            {
                "machine": platform.processor() or platform.machine(),
                "cpus": os.cpu_count(),
                "repeat": args.repeat,
                "threads": args.threads,
                "flip": args.flip,
                "results": results,
            },
        )


if __name__ == "__main__":
    main()
