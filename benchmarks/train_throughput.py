"""Training throughput: images per second of an ArcFace training step on the devices present.

    .venv/bin/python benchmarks/train_throughput.py [--backbone iresnet50] [--batch-size 128]
        [--steps 20] [--warmup 3] [--no-mixed-precision] [--classes 10000]

MirroredStrategy over every visible GPU (the global batch split between them), the CPU when
there is none: the same Trainer and train step as ``manage.py train_arcface``, fed synthetic
already-decoded images so the figure is the network's (forward, backward, SGD update, margin
head), not JPEG decoding. Mixed precision is on by default (float16 + loss scaling on GPUs,
bfloat16 on CPUs). The first ``--warmup`` steps (graph tracing) are not timed.
Writes artifacts/train-throughput.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, peak_rss_mb, print_table, write_json


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", default="iresnet50")
    parser.add_argument("--batch-size", type=int, default=128, help="global batch")
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (tracing)")
    parser.add_argument("--input-size", type=int, default=112)
    parser.add_argument("--embedding-size", type=int, default=512)
    parser.add_argument("--classes", type=int, default=10_000, help="width of the margin head")
    parser.add_argument("--no-mixed-precision", action="store_true")
    parser.add_argument("--json", type=Path, default=ROOT / "artifacts" / "train-throughput.json")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    import numpy as np
    import tensorflow as tf

    from facetrain.data.pipeline import TrainingData
    from facetrain.trainer import TrainConfig, Trainer

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    rng = np.random.default_rng(0)
    images = rng.normal(0, 0.5, (args.batch_size, args.input_size, args.input_size, 3)).astype(np.float32)
    labels = rng.integers(0, args.classes, args.batch_size).astype(np.int32)
    synthetic = tf.data.Dataset.from_tensors((images, labels)).repeat().prefetch(2)
    # Only the sizes matter to the trainer here: the synthetic batches replace the data.
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
        started = time.perf_counter()
        trainer.train(synthetic)  # tracing + warm-up, untimed
        warmup_s = time.perf_counter() - started
        trainer.total_steps = args.warmup + args.steps
        result = trainer.train(synthetic)
    devices = [str(d) for d in trainer.strategy.extended.worker_devices]
    gpu_names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
    peak_gpu_mb = None
    if gpus:
        peak_gpu_mb = max(tf.config.experimental.get_memory_info(f"GPU:{i}")["peak"] for i in range(len(gpus))) / 2**20
    row = {
        "backbone": args.backbone,
        "batch_size": args.batch_size,
        "replicas": trainer.strategy.num_replicas_in_sync,
        "devices": devices,
        "gpu_names": gpu_names,
        "precision": trainer.policy,
        "classes": args.classes,
        "input_size": args.input_size,
        "timed_steps": args.steps,
        "warmup_steps": args.warmup,
        "images_per_second": result.images_per_second,
        "ms_per_step": 1000 * args.batch_size / result.images_per_second,
        "warmup_s": warmup_s,
        "peak_rss_mb": peak_rss_mb(),
        "peak_gpu_mb": peak_gpu_mb,
        "final_loss": result.losses[-1][1] if result.losses else None,
        "tensorflow": tf.__version__,
        "cpu_count": os.cpu_count(),
    }
    print_table(
        ["backbone", "devices", "precision", "batch", "img/s", "ms/step", "peak RSS MB"],
        [
            [
                args.backbone,
                ", ".join(gpu_names) or f"CPU x{os.cpu_count()}",
                trainer.policy,
                args.batch_size,
                row["images_per_second"],
                row["ms_per_step"],
                row["peak_rss_mb"],
            ]
        ],
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.json, row)


if __name__ == "__main__":
    main()
