"""Train MobileFaceNet from scratch on the LFW people with >= 10 photos, on the CPU, and measure it.

    .venv/bin/python benchmarks/train_small.py [--backend tensorflow|jax] [--legacy-trainer]
        [--epochs 8] [--batch-size 64] [--s 32] [--m 0.4]

1. The 158 people of LFW with at least 10 photos (deep-funneled) are aligned once through the
   engine's MTCNN + ArcFace template into a crop cache (artifacts/train-small/aligned).
2. Two photos of each person are held out; MobileFaceNet trains on the rest with the ArcFace head,
   evaluating verification on pairs of the held-out photos every ``--eval-every`` steps.
3. Rank-1 identification of the held-out photos against per-person mean templates of the
   training photos (chance: 1/158).
4. The backbone is exported with ``facetrain.export.export_model`` into the model folder
   and ``manage.py evaluate --benchmark lfw`` runs it through the whole engine.

``--backend`` picks Keras' backend for the backend-neutral trainer (``facetrain.keras_trainer``:
numpy batches decoded by OpenCV worker processes, ``.keras`` checkpoints); ``--legacy-trainer``
runs the TensorFlow trainer (``facetrain.trainer``, tf.data) instead.

Caveat printed with the results: LFW's pairs.txt shares people with this training set, so the LFW
number is not a clean held-out-identity figure; the rank-1 figure is on held-out photos only.
Writes artifacts/train-small-<backend>.json (artifacts/train-small.json with ``--legacy-trainer``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from benchmarks.common import ROOT, print_table, test_data_dir, write_json


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("tensorflow", "jax"), default="tensorflow")
    parser.add_argument("--legacy-trainer", action="store_true", help="the TensorFlow trainer (tf.data)")
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: one per core)")
    parser.add_argument("--lfw", type=Path, default=test_data_dir() / "lfw")
    parser.add_argument("--min-images", type=int, default=10)
    parser.add_argument("--holdout", type=int, default=2, help="photos per person held out")
    parser.add_argument("--epochs", type=float, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--embedding-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--s", type=float, default=32.0)
    parser.add_argument("--m", type=float, default=0.4)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--name", default=None, help="export name (default lfw158-mobilefacenet-<backend>)")
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "train-small")
    parser.add_argument(
        "--model-dir", type=Path, default=Path(os.environ.get("FACESITE_MODEL_DIR", ROOT / "var" / "models"))
    )
    parser.add_argument("--skip-lfw", action="store_true", help="skip manage.py evaluate")
    args = parser.parse_args()
    if args.legacy_trainer and args.backend != "tensorflow":
        parser.error("--legacy-trainer runs on TensorFlow only")
    args.name = args.name or f"lfw158-mobilefacenet-{args.backend}{'-legacy' if args.legacy_trainer else ''}"
    return args


def heldout_pairs(labels: np.ndarray, rng: np.random.Generator):
    """Every same-person pair of held-out photos plus as many random different-person pairs."""

    same = [(i, j) for i in range(len(labels)) for j in range(i + 1, len(labels)) if labels[i] == labels[j]]
    diff: set[tuple[int, int]] = set()
    while len(diff) < len(same):
        i, j = sorted(rng.choice(len(labels), 2, replace=False).tolist())
        if labels[i] != labels[j]:
            diff.add((i, j))
    pairs = np.array(same + sorted(diff))
    flags = np.array([True] * len(same) + [False] * len(diff))
    order = rng.permutation(len(pairs))
    return pairs[order], flags[order], np.arange(len(pairs)) % 10


def main() -> None:
    args = parse_args()
    # Keras reads its backend once, at its first import: set it before anything imports Keras.
    os.environ["KERAS_BACKEND"] = args.backend
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import cv2
    import keras

    import faceengine
    from faceengine.evaluation.datasets import _find_lfw_images
    from facetrain.config import TrainConfig
    from facetrain.data.folder import IdentityFolder, align_identities, engine_aligner, scan_identities
    from facetrain.export import export_model
    from facetrain.margin import MarginConfig
    from facetrain.verification import VerificationSet, embed_faces, evaluate_sets

    timings = {}
    rng = np.random.default_rng(0)
    images_dir = _find_lfw_images(args.lfw)
    people = scan_identities(images_dir, min_images=args.min_images)
    print(f"{people.classes} people with >= {args.min_images} photos, {len(people)} photos")

    started = time.perf_counter()
    aligner = None

    def align(data: bytes):
        # The detector (and TensorFlow under it) is loaded only when a crop is missing from the cache.
        nonlocal aligner
        if aligner is None:
            aligner = engine_aligner(faceengine.load(args.model_dir).detector, args.size)
        return aligner(data)

    aligned = align_identities(people, images_dir, args.out / f"aligned-{args.size}", align)
    timings["align_s"] = time.perf_counter() - started
    print(f"aligned {len(aligned)} photos ({len(people) - len(aligned)} without a face) in {timings['align_s']:.0f} s")

    labels = np.array(aligned.labels)
    held = np.zeros(len(labels), bool)
    for label in range(aligned.classes):
        members = np.flatnonzero(labels == label)
        held[rng.choice(members, min(args.holdout, len(members) - 1), replace=False)] = True
    train = IdentityFolder(
        [f for f, h in zip(aligned.files, held, strict=True) if not h], labels[~held].tolist(), aligned.names
    )
    test_files = [f for f, h in zip(aligned.files, held, strict=True) if h]
    test_labels = labels[held]

    def load(files):
        return np.stack([cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files])

    test_faces = load(test_files)
    pairs, same, folds = heldout_pairs(test_labels, rng)
    vset = VerificationSet("heldout_pairs", test_faces, pairs, same, folds)

    run_dir = args.out / ("run" if args.legacy_trainer else f"run-{args.backend}")
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)  # a fresh run, not a resume of the previous benchmark
    margin = MarginConfig(s=args.s, m2=args.m)
    config = TrainConfig(
        out=run_dir,
        backbone="mobilefacenet",
        embedding_size=args.embedding_size,
        input_size=args.size,
        margin=margin,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        schedule="poly",
        warmup_epochs=0.5,
        eval_every=args.eval_every,
        log_every=20,
    )
    trainer: Any  # the TensorFlow Trainer or the KerasTrainer: the same loop outputs
    if args.legacy_trainer:
        from facetrain.data.pipeline import folder_source
        from facetrain.trainer import Trainer

        trainer = Trainer(config, folder_source(train), eval_sets=[vset], class_names=aligned.names)
        replicas, devices = trainer.strategy.num_replicas_in_sync, []
    else:
        from facetrain.data.loader import FolderSamples
        from facetrain.keras_trainer import KerasTrainer

        trainer = KerasTrainer(
            config, FolderSamples(train), eval_sets=[vset], class_names=aligned.names, workers=args.workers
        )
        replicas, devices = trainer.distribution.replicas, trainer.distribution.devices
    started = time.perf_counter()
    result = trainer.train()
    timings["train_s"] = time.perf_counter() - started
    print(
        f"trained {result.step} steps ({result.epoch:.1f} epochs) in {timings['train_s']:.0f} s, "
        f"{result.images_per_second:.1f} img/s"
    )

    print("\nLoss curve (margin softmax, mean over each 20-step window):")
    print_table(["step", "loss"], [[step, f"{loss:.3f}"] for step, loss in result.losses])
    print("\nVerification on held-out photo pairs during training:")
    print_table(
        ["step", "epoch", "accuracy %", "threshold"],
        [
            [
                r["step"],
                r["epoch"],
                f"{100 * r['benchmarks']['heldout_pairs']['accuracy']:.2f}",
                f"{r['benchmarks']['heldout_pairs']['threshold']:.3f}",
            ]
            for r in result.evaluations
        ],
    )

    # Rank-1 identification: each held-out photo against mean templates of the training photos.
    backbone = keras.models.load_model(run_dir / "backbone.keras", compile=False)
    train_embeddings = embed_faces(backbone, load(train.files), flip=True)
    train_labels = np.array(train.labels)
    templates = np.stack([train_embeddings[train_labels == c].mean(axis=0) for c in range(aligned.classes)])
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)
    test_embeddings = embed_faces(backbone, test_faces, flip=True)
    rank1 = float(np.mean(np.argmax(test_embeddings @ templates.T, axis=1) == test_labels))
    final_verification = evaluate_sets(backbone, [vset])["heldout_pairs"]
    print(
        f"\nrank-1 identification of {len(test_labels)} held-out photos among {aligned.classes} people: "
        f"{100 * rank1:.2f}% (chance {100 / aligned.classes:.2f}%)"
    )

    spec = export_model(
        backbone,
        name=args.name,
        model_dir=args.model_dir,
        convention={"color": "RGB", "mean": 127.5, "std": 128.0, "layout": "NHWC", "size": args.size},
        verification_threshold=final_verification["threshold"],
        source={"trained_by": "benchmarks/train_small.py", "run": str(run_dir)},
    )
    print(f"exported {spec.name} ({spec.dim}-d) into {args.model_dir}")

    lfw = None
    if not args.skip_lfw:
        json_out = ROOT / "artifacts" / f"{args.name}-lfw.json"
        started = time.perf_counter()
        command = [
            sys.executable,
            str(ROOT / "manage.py"),
            "evaluate",
            "--benchmark",
            "lfw",
            "--data",
            str(args.lfw),
            "--model",
            args.name,
            "--json",
            str(json_out),
            "--no-progress",
        ]
        print("$ " + " ".join(command[1:]))
        # The engine runs Keras models on TensorFlow, whichever backend trained them.
        env = {**os.environ, "FACESITE_MODEL_DIR": str(args.model_dir), "KERAS_BACKEND": "tensorflow"}
        subprocess.run(command, check=True, cwd=ROOT, env=env)
        timings["lfw_evaluate_s"] = time.perf_counter() - started
        lfw = json.loads(json_out.read_text())["lfw"]
        print("LFW note: pairs.txt shares people with the training set (not a held-out-identity figure).")

    write_json(
        ROOT / "artifacts" / ("train-small.json" if args.legacy_trainer else f"train-small-{args.backend}.json"),
        {
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "people": aligned.classes,
            "train_photos": len(train),
            "heldout_photos": len(test_labels),
            "photos_without_face": len(people) - len(aligned),
            "steps": result.step,
            "epochs": result.epoch,
            "train_images_per_second": result.images_per_second,
            "loss_curve": result.losses,
            "evaluations": result.evaluations,
            "rank1_identification": rank1,
            "chance": 1 / aligned.classes,
            "heldout_verification": final_verification,
            "lfw": lfw,
            "timings_s": timings,
            "precision": trainer.policy,
            "backend": args.backend,
            "trainer": "tensorflow (legacy)" if args.legacy_trainer else "keras",
            "keras": keras.__version__,
            "replicas": replicas,
            "devices": devices,
        },
    )


if __name__ == "__main__":
    main()
