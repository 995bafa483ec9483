"""Training throughput: images per second, peak device memory and model FLOPs utilisation.

    .venv/bin/python benchmarks/train_throughput.py --backend {tensorflow,jax}
        [--backbone iresnet50] [--batch-sizes 128,256,512] [--precisions bfloat16,float32]
        [--steps 20] [--warmup 3] [--classes 10000] [--peak-tflops N] [--json PATH]
    .venv/bin/python benchmarks/train_throughput.py --legacy-trainer [--batch-size 128] ...

One row per (batch, precision), each measured in a fresh process (Keras' backend is chosen per
process, and the device's peak-memory counter cannot be reset): the backend-neutral trainer's
step (``facetrain.keras_trainer``: forward, backward, SGD update, the ArcFace head over
``--classes`` synthetic classes) on every visible device (keras.distribution DataParallel on JAX,
MirroredStrategy on TensorFlow), fed one synthetic already-decoded batch, so the figure is the
network's and not JPEG decoding's. The first ``--warmup`` steps (compilation) are not timed.

Model FLOPs utilisation: IResNet-50 costs about 6.3 GFLOPs forward per 112x112 face (scaled by
area for other sizes), and a trained face about three times that (forward + the two backward
products). The peak is ``--peak-tflops`` when given, else a known accelerator's bfloat16 dense
peak (H200/H100: 790 TFLOP/s as this project counts it), else, on a CPU, a matmul measured here
in the row's precision. ``--legacy-trainer`` runs the TensorFlow trainer (tf.data,
``facetrain.trainer``) for one configuration, as before. Writes artifacts/train-throughput-<backend>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, peak_rss_mb, print_table, write_json

FORWARD_GFLOPS = {"iresnet50": 6.3}  # per 112x112 face
KNOWN_PEAK_TFLOPS = {"H200": 790.0, "H100": 790.0}  # bfloat16 dense, as the issue counts it
POLICY = {"bfloat16": "mixed_bfloat16", "float16": "mixed_float16", "float32": "float32"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("tensorflow", "jax"), default="tensorflow")
    parser.add_argument("--backbone", default="iresnet50")
    parser.add_argument("--batch-sizes", default="128,256,512", help="global batches, comma-separated")
    parser.add_argument("--precisions", default="bfloat16,float32", help=f"of {', '.join(POLICY)}")
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation)")
    parser.add_argument("--input-size", type=int, default=112)
    parser.add_argument("--embedding-size", type=int, default=512)
    parser.add_argument("--classes", type=int, default=10_000, help="width of the margin head")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak for the utilisation")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per row")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--legacy-trainer", action="store_true", help="the TensorFlow trainer, one row")
    parser.add_argument("--batch-size", type=int, default=128, help="with --legacy-trainer")
    parser.add_argument("--no-mixed-precision", action="store_true", help="with --legacy-trainer")
    parser.add_argument("--row", type=Path, default=None, help=argparse.SUPPRESS)  # one row, into this file
    parser.add_argument("--precision", default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def forward_flops(backbone: str, input_size: int) -> float | None:
    gflops = FORWARD_GFLOPS.get(backbone)
    return None if gflops is None else gflops * 1e9 * (input_size / 112) ** 2


# ---------------------------------------------------------------- one row, in its own process


def device_facts(backend: str) -> dict:
    """Device names, kind and the peak memory used so far (bytes), for the backend of this process."""
    if backend == "jax":
        import jax

        devices = jax.local_devices()
        stats = [d.memory_stats() or {} for d in devices]
        peaks = [int(st["peak_bytes_in_use"]) for st in stats if "peak_bytes_in_use" in st]
        return {
            "kind": devices[0].platform,
            "names": [getattr(d, "device_kind", str(d)) for d in devices],
            "peak_device_bytes": max(peaks) if peaks and len(peaks) == len(devices) else None,
            "jax": jax.__version__,
        }
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
    peak = max(tf.config.experimental.get_memory_info(f"GPU:{i}")["peak"] for i in range(len(gpus))) if gpus else None
    return {"kind": "gpu" if gpus else "cpu", "names": names, "peak_device_bytes": peak, "tensorflow": tf.__version__}


def measured_matmul_tflops(policy: str) -> float:
    """A square matmul's TFLOP/s in the row's compute dtype: the CPU's practical peak."""
    import keras
    import numpy as np

    dtype = "bfloat16" if "bfloat16" in policy else "float16" if "float16" in policy else "float32"
    n = 1024
    a = keras.ops.convert_to_tensor(np.random.default_rng(0).normal(size=(n, n)), dtype=dtype)
    keras.ops.convert_to_numpy(keras.ops.matmul(a, a))  # compile / warm up
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        keras.ops.convert_to_numpy(keras.ops.matmul(a, a))
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e12


def measure_row(args: argparse.Namespace) -> dict:
    import keras
    import numpy as np

    from facetrain.config import TrainConfig
    from facetrain.keras_trainer import KerasTrainer

    backend = keras.backend.backend()
    policy = POLICY[args.precision]
    batch = int(args.batch_sizes)
    rng = np.random.default_rng(0)
    images = rng.normal(0, 0.5, (batch, args.input_size, args.input_size, 3)).astype(np.float32)
    labels = rng.integers(0, args.classes, batch).astype(np.int32)

    class Sizes:  # only the sizes matter: the synthetic batches replace the data
        kind, classes = "synthetic", args.classes
        names: list[str] = []

        def __len__(self) -> int:
            return batch * (args.warmup + args.steps)

        def read(self, index: int) -> tuple[bytes, int]:
            raise NotImplementedError

    def synthetic():
        while True:
            yield images, labels

    # One fit call: its first log window (the warm-up steps, compilation included) is left out,
    # the later windows are the timed steps. A second fit call could retrace the step.
    warmup = max(args.warmup, 1)
    steps = -(-args.steps // warmup) * warmup
    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(
            out=Path(out),
            backbone=args.backbone,
            embedding_size=args.embedding_size,
            input_size=args.input_size,
            batch_size=batch,
            epochs=1,
            max_steps=warmup + steps,
            precision=policy,
            eval_every=0,
            log_every=warmup,
        )
        trainer = KerasTrainer(config, Sizes(), workers=0)
        trainer.checkpoint_and_evaluate = lambda: {}  # type: ignore[method-assign]  # no files to write
        started = time.perf_counter()
        result = trainer.train(synthetic())
        wall = time.perf_counter() - started
        windows = [json.loads(line) for line in (Path(out) / "losses.jsonl").read_text().splitlines()]
    timed = windows[1:]
    timed_seconds = sum(warmup * batch / w["images_per_second"] for w in timed)
    images_per_second = len(timed) * warmup * batch / timed_seconds
    warmup_s = warmup * batch / windows[0]["images_per_second"]
    facts = device_facts(backend)
    flops = forward_flops(args.backbone, args.input_size)
    achieved = None if flops is None else images_per_second * 3 * flops / 1e12
    peak, peak_source = args.peak_tflops, "--peak-tflops"
    if peak is None:
        known = [v for k, v in KNOWN_PEAK_TFLOPS.items() if any(k in name for name in facts["names"])]
        if known:
            peak, peak_source = known[0] * len(facts["names"]), "bfloat16 dense peak of " + ", ".join(facts["names"])
        elif facts["kind"] == "cpu":
            peak, peak_source = measured_matmul_tflops(policy), f"measured {args.precision} matmul"
        else:
            peak_source = "unknown device: pass --peak-tflops"
    peak_device = facts["peak_device_bytes"]
    return {
        "backend": backend,
        "backbone": args.backbone,
        "batch_size": batch,
        "precision": trainer.policy,
        "devices": trainer.distribution.devices,
        "device_kind": facts["kind"],
        "device_names": facts["names"],
        "classes": args.classes,
        "input_size": args.input_size,
        "timed_steps": steps,
        "warmup_steps": warmup,
        "warmup_s": warmup_s,
        "wall_s": wall,
        "images_per_second": images_per_second,
        "ms_per_step": 1000 * batch / images_per_second,
        "final_loss": result.losses[-1][1] if result.losses else None,
        "peak_device_mb": None if peak_device is None else peak_device / 2**20,
        "peak_rss_mb": peak_rss_mb(),
        "achieved_tflops": achieved,
        "peak_tflops": peak,
        "peak_source": peak_source,
        "mfu": None if achieved is None or not peak else achieved / peak,
        "keras": keras.__version__,
        "cpu_count": os.cpu_count(),
        **{k: v for k, v in facts.items() if k in ("jax", "tensorflow")},
    }


# ---------------------------------------------------------------- the table


def run_rows(args: argparse.Namespace, path: Path) -> list[dict]:
    rows: list[dict] = []
    for precision in args.precisions.split(","):
        for batch in args.batch_sizes.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                row_file = Path(tmp) / "row.json"
                command = [
                    sys.executable,
                    __file__,
                    "--backend",
                    args.backend,
                    "--backbone",
                    args.backbone,
                    "--batch-sizes",
                    batch,
                    "--precision",
                    precision,
                    "--steps",
                    str(args.steps),
                    "--warmup",
                    str(args.warmup),
                    "--input-size",
                    str(args.input_size),
                    "--embedding-size",
                    str(args.embedding_size),
                    "--classes",
                    str(args.classes),
                    "--row",
                    str(row_file),
                    *(["--peak-tflops", str(args.peak_tflops)] if args.peak_tflops else []),
                ]
                env = {**os.environ, "KERAS_BACKEND": args.backend}
                print(f"$ {args.backend} batch {batch} {precision}", flush=True)
                try:
                    done = subprocess.run(command, env=env, timeout=args.timeout, capture_output=True, text=True)
                except subprocess.TimeoutExpired:
                    rows.append({"batch_size": int(batch), "precision": precision, "error": "timed out"})
                    continue
                if done.returncode != 0 or not row_file.is_file():
                    tail = (done.stderr or "").strip().splitlines()[-3:]
                    rows.append({"batch_size": int(batch), "precision": precision, "error": " | ".join(tail)})
                    print("\n".join(tail), flush=True)
                    continue
                rows.append(json.loads(row_file.read_text()))
            # Written after every row, so a run stopped at its time limit keeps what it measured.
            path.write_text(json.dumps({"backend": args.backend, "backbone": args.backbone, "rows": rows}, indent=2))
    return rows


def fmt(value, pattern: str) -> str:
    return "n/a" if value is None else pattern.format(value)


def print_rows(rows: list[dict]) -> None:
    table = []
    for row in rows:
        if "error" in row:
            table.append(["?", row["precision"], row["batch_size"], "failed: " + row["error"][:60], "", "", "", ""])
            continue
        device = ", ".join(sorted(set(row["device_names"]))) or f"CPU x{row['cpu_count']}"
        memory = row["peak_device_mb"] if row["peak_device_mb"] is not None else row["peak_rss_mb"]
        table.append(
            [
                f"{device} ({row['backend']}, {len(row['devices'])} dev)",
                row["precision"],
                row["batch_size"],
                f"{row['images_per_second']:.1f}",
                f"{row['ms_per_step']:.0f}",
                f"{memory / 1024:.1f}" + ("" if row["peak_device_mb"] is not None else " (RSS)"),
                fmt(row["achieved_tflops"], "{:.2f}"),
                fmt(row["mfu"], "{:.1%}") + f" of {fmt(row['peak_tflops'], '{:.1f}')}",
            ]
        )
    print_table(["devices", "precision", "batch", "img/s", "ms/step", "peak GB", "TFLOP/s", "MFU"], table)


def legacy(args: argparse.Namespace) -> None:
    """The TensorFlow trainer's step, one configuration (what this script measured before)."""
    import numpy as np
    import tensorflow as tf

    from facetrain.data.pipeline import TrainingData
    from facetrain.trainer import TrainConfig, Trainer

    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)
    rng = np.random.default_rng(0)
    images = rng.normal(0, 0.5, (args.batch_size, args.input_size, args.input_size, 3)).astype(np.float32)
    labels = rng.integers(0, args.classes, args.batch_size).astype(np.int32)
    synthetic = tf.data.Dataset.from_tensors((images, labels)).repeat().prefetch(2)
    sizes = TrainingData(
        tf.data.Dataset.range(1), None, args.batch_size * (args.warmup + args.steps), args.classes, "synthetic"
    )
    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(
            out=Path(out),
            backbone=args.backbone,
            embedding_size=args.embedding_size,
            input_size=args.input_size,
            batch_size=args.batch_size,
            epochs=1,
            max_steps=args.warmup,
            mixed_precision=not args.no_mixed_precision,
            eval_every=0,
            log_every=max(args.steps, 1),
        )
        trainer = Trainer(config, sizes)
        trainer.train(synthetic)
        trainer.total_steps = args.warmup + args.steps
        result = trainer.train(synthetic)
    row = {
        "trainer": "tensorflow (legacy)",
        "backbone": args.backbone,
        "batch_size": args.batch_size,
        "precision": trainer.policy,
        "images_per_second": result.images_per_second,
        "peak_rss_mb": peak_rss_mb(),
    }
    print_table(
        ["trainer", "precision", "batch", "img/s", "peak RSS MB"],
        [[row["trainer"], row["precision"], row["batch_size"], row["images_per_second"], row["peak_rss_mb"]]],
    )
    write_json(args.json or ROOT / "artifacts" / "train-throughput.json", row)


def main() -> None:
    args = parse_args()
    if args.row is not None:  # a child: one configuration
        args.row.write_text(json.dumps(measure_row(args)))
        return
    if args.legacy_trainer:
        os.environ["KERAS_BACKEND"] = "tensorflow"
        legacy(args)
        return
    path = args.json or ROOT / "artifacts" / f"train-throughput-{args.backend}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = run_rows(args, path)
    print_rows(rows)
    write_json(path, {"backend": args.backend, "backbone": args.backbone, "rows": rows})


if __name__ == "__main__":
    main()
