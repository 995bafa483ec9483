"""The GPU machine's training run, and the data it carries there.

    # here, once: pack the aligned LFW crops (from benchmarks/train_small.py) into a RecordIO file
    .venv/bin/python benchmarks/gpu_train_run.py pack [--aligned artifacts/train-small/aligned-64]
        [--out artifacts/gpu/lfw158-64.rec]
    # there (benchmarks/gpu_train_run.sh runs it): a short real training run with its loss curve
    python3 benchmarks/gpu_train_run.py train --data artifacts/gpu/lfw158-64.rec --json OUT.json
        [--backbone mobilefacenet] [--size 64] [--epochs 30] [--batch-size 256] [--precision mixed_bfloat16]

``train`` runs the backend-neutral trainer (``facetrain.keras_trainer``) on whatever backend
``KERAS_BACKEND`` names (JAX there: no TensorFlow on that machine), feeding the RecordIO pack
through the numpy loader (OpenCV decoding in worker processes), and writes the loss curve,
images per second and the devices to ``--json``. The pack is the 158 LFW people with at least
10 photos, JPEG-encoded, so it fits in what may be carried (64 MiB with the wheels).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    pack = sub.add_parser("pack", help="aligned crops -> a RecordIO pack (here)")
    pack.add_argument("--aligned", type=Path, default=Path("artifacts/train-small/aligned-64"))
    pack.add_argument("--out", type=Path, default=Path("artifacts/gpu/lfw158-64.rec"))
    pack.add_argument("--min-images", type=int, default=10)
    pack.add_argument("--quality", type=int, default=92, help="JPEG quality")
    train = sub.add_parser("train", help="a short training run with its loss curve (there)")
    train.add_argument("--data", type=Path, required=True)
    train.add_argument("--json", type=Path, required=True)
    train.add_argument("--backbone", default="mobilefacenet")
    train.add_argument("--size", type=int, default=64)
    train.add_argument("--embedding-size", type=int, default=128)
    train.add_argument("--epochs", type=float, default=30)
    train.add_argument("--batch-size", type=int, default=256)
    train.add_argument("--lr", type=float, default=0.1)
    train.add_argument("--precision", default="mixed_bfloat16")
    train.add_argument("--log-every", type=int, default=10)
    train.add_argument("--workers", type=int, default=None)
    return parser.parse_args()


def pack(args: argparse.Namespace) -> None:
    import cv2

    from facetrain.data.folder import scan_identities
    from facetrain.data.recordio import write_recordio

    folder = scan_identities(args.aligned, min_images=args.min_images)

    def samples():
        for path, label in zip(folder.files, folder.labels, strict=True):
            ok, data = cv2.imencode(".jpg", cv2.imread(str(path)), [cv2.IMWRITE_JPEG_QUALITY, args.quality])
            if not ok:
                raise ValueError(f"could not encode {path}")
            yield data.tobytes(), label

    args.out.parent.mkdir(parents=True, exist_ok=True)
    count = write_recordio(args.out, samples())
    size = args.out.stat().st_size / 2**20
    print(f"wrote {count} faces of {folder.classes} people to {args.out} ({size:.1f} MiB)")


def train(args: argparse.Namespace) -> None:
    import keras

    from facetrain.config import TrainConfig
    from facetrain.data.loader import open_samples
    from facetrain.keras_trainer import KerasTrainer
    from facetrain.margin import MarginConfig

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    source = open_samples(args.data)
    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(
            out=Path(out),
            backbone=args.backbone,
            embedding_size=args.embedding_size,
            input_size=args.size,
            margin=MarginConfig(s=32, m2=0.3),
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            schedule="poly",
            warmup_epochs=1,
            eval_every=0,
            log_every=args.log_every,
            precision=args.precision,
        )
        started = time.perf_counter()
        trainer = KerasTrainer(config, source, workers=args.workers)
        result = trainer.train()
        wall = time.perf_counter() - started
    payload = {
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "devices": trainer.distribution.devices,
        "precision": trainer.policy,
        "backbone": args.backbone,
        "input_size": args.size,
        "batch_size": args.batch_size,
        "examples": len(source),
        "classes": source.classes,
        "steps": result.step,
        "epochs": result.epoch,
        "images_per_second": result.images_per_second,
        "wall_s": wall,
        "loss_curve": result.losses,
        "cpu_count": os.cpu_count(),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=2))
    print(
        f"{result.step} steps, {result.images_per_second:.0f} img/s; loss {result.losses[0][1]:.2f} -> "
        f"{result.losses[-1][1]:.2f}; wrote {args.json}"
    )


def main() -> None:
    args = parse_args()
    if args.command == "pack":
        pack(args)
    else:
        train(args)


if __name__ == "__main__":
    main()
