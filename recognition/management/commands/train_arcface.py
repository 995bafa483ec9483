"""manage.py train_arcface: train a backbone with the ArcFace head, evaluating as it goes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from facetrain.run import TRAINERS  # imports no Keras: the backend can still be chosen

KERAS_BACKENDS = ("tensorflow", "jax")


class Command(BaseCommand):
    help = (
        "Train an ArcFace face-recognition network on an insightface RecordIO pack (train.rec/.idx), "
        "TFRecord files or a folder per identity. --trainer tensorflow (default): tf.data and "
        "MirroredStrategy over every visible GPU (the CPU when none), MultiWorkerMirroredStrategy when "
        "TF_CONFIG names several machines, TensorBoard logs. --trainer keras: the backend-neutral "
        "trainer on --keras-backend tensorflow or jax (every visible device; no TFRecord, no "
        "TensorBoard). The run folder receives checkpoints (resumed automatically), backbone.keras, "
        "run.json and verification.jsonl; export it with `manage.py export_model --run DIR`."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--data",
            required=True,
            type=Path,
            help="train.rec (or its folder), *.tfrecord (or their folder), or a folder "
            "with one sub-folder of photos per identity.",
        )
        parser.add_argument(
            "--out", required=True, type=Path, help="Run folder; an existing one with checkpoints is resumed."
        )
        parser.add_argument(
            "--backbone",
            default="iresnet50",
            choices=["resnet_v2_m_50", "iresnet50", "iresnet100", "mobilefacenet"],
            help="Network to train (default iresnet50).",
        )
        parser.add_argument("--embedding-size", type=int, default=512, help="Embedding dimension (512).")
        parser.add_argument("--input-size", type=int, default=112, help="Face crop side in pixels (112).")
        parser.add_argument(
            "--activation",
            default="prelu",
            choices=["prelu", "leaky_relu", "relu"],
            help="Activation of the ResNets (the original project's PReLU/leaky ablation).",
        )
        parser.add_argument("--dropout", type=float, default=0.0, help="Dropout before the embedding FC.")
        parser.add_argument("--epochs", type=float, default=1.0, help="Passes over the data (fractions allowed).")
        parser.add_argument(
            "--batch-size", type=int, default=128, help="Global batch size, split evenly over the replicas."
        )
        parser.add_argument("--max-steps", type=int, default=None, help="Stop after this many steps in all.")
        parser.add_argument("--lr", type=float, default=0.1, help="Peak learning rate of SGD (0.1).")
        parser.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (0.9).")
        parser.add_argument(
            "--schedule",
            default="poly",
            choices=["poly", "cosine", "step", "constant"],
            help="Learning-rate decay after the warm-up (poly: insightface's).",
        )
        parser.add_argument(
            "--lr-steps", default="", help="Comma-separated steps at which the 'step' schedule divides the rate by 10."
        )
        parser.add_argument("--warmup-epochs", type=float, default=0.0, help="Linear warm-up length in epochs.")
        parser.add_argument("--margin-s", type=float, default=64.0, help="Logit scale s (64).")
        parser.add_argument("--margin-m1", type=float, default=1.0, help="Multiplicative angular margin (SphereFace).")
        parser.add_argument("--margin-m2", type=float, default=0.5, help="Additive angular margin (ArcFace, 0.5).")
        parser.add_argument("--margin-m3", type=float, default=0.0, help="Additive cosine margin (CosFace).")
        parser.add_argument("--easy-margin", action="store_true", help="Apply the margin only where cos(theta) > 0.")
        parser.add_argument(
            "--mixed-precision",
            action="store_true",
            help="float16 compute with loss scaling on GPUs (bfloat16 on CPUs).",
        )
        parser.add_argument(
            "--eval",
            action="append",
            default=[],
            metavar="KIND:PATH",
            help="Verification benchmark evaluated every --eval-every steps; repeatable. "
            "KIND is lfw (folder with pairs.txt), bin (insightface .bin file or "
            "folder), cfp-fp or cfp-ff.",
        )
        parser.add_argument(
            "--eval-every",
            type=int,
            default=2000,
            help="Steps between evaluations (each also saves a checkpoint and the model).",
        )
        parser.add_argument("--log-every", type=int, default=50, help="Steps between log lines.")
        parser.add_argument(
            "--align",
            action="store_true",
            help="Identity folders hold raw photos: align them through the engine first.",
        )
        parser.add_argument(
            "--aligned-cache", type=Path, default=None, help="Where --align keeps the crops (default: beside --data)."
        )
        parser.add_argument(
            "--min-images", type=int, default=1, help="Identity folders: skip people with fewer photos."
        )
        parser.add_argument(
            "--trainer",
            default="tensorflow",
            choices=TRAINERS,
            help="tensorflow: the tf.data trainer (default); keras: the backend-neutral trainer.",
        )
        parser.add_argument(
            "--keras-backend",
            default=None,
            choices=KERAS_BACKENDS,
            help="With --trainer keras: the Keras backend (default: $KERAS_BACKEND, else tensorflow).",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="With --trainer keras: decoding processes (default: the CPUs, at most 8; 0 decodes in this process).",
        )
        parser.add_argument("--seed", type=int, default=0, help="Shuffling seed.")
        parser.add_argument("--no-progress", action="store_true", help="Hide the alignment progress bar.")

    def handle(self, *args, **options) -> None:
        if options["trainer"] == "keras":
            _choose_keras_backend(options["keras_backend"])
        elif options["keras_backend"] or options["workers"] is not None:
            raise CommandError("--keras-backend and --workers go with --trainer keras.")
        # Keras (and TensorFlow, on its backend) loads here, never when Django starts.
        from tqdm import tqdm

        from faceengine.errors import EngineError
        from facetrain.config import TrainConfig
        from facetrain.margin import MarginConfig
        from facetrain.run import EvalSpec, train_run

        if not options["data"].exists():
            raise CommandError(f"{options['data']} does not exist.")
        try:
            evals = [EvalSpec.parse(text) for text in options["eval"]]
            margin = MarginConfig(
                s=options["margin_s"],
                m1=options["margin_m1"],
                m2=options["margin_m2"],
                m3=options["margin_m3"],
                easy_margin=options["easy_margin"],
            )
            lr_steps = [int(step) for step in options["lr_steps"].split(",") if step.strip()]
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        config = TrainConfig(
            out=options["out"],
            backbone=options["backbone"],
            embedding_size=options["embedding_size"],
            input_size=options["input_size"],
            activation=options["activation"],
            dropout=options["dropout"],
            margin=margin,
            epochs=options["epochs"],
            batch_size=options["batch_size"],
            lr=options["lr"],
            momentum=options["momentum"],
            schedule=options["schedule"],
            warmup_epochs=options["warmup_epochs"],
            lr_steps=lr_steps,
            max_steps=options["max_steps"],
            mixed_precision=options["mixed_precision"],
            eval_every=options["eval_every"],
            log_every=options["log_every"],
            seed=options["seed"],
        )

        def progress(items):
            return tqdm(items, unit="img", disable=options["no_progress"], file=self.stderr._out)

        try:
            trainer, result = train_run(
                config,
                options["data"],
                evals=evals,
                align=options["align"],
                detector_factory=_detector,
                aligned_cache=options["aligned_cache"],
                min_images=options["min_images"],
                progress=progress,
                trainer=options["trainer"],
                workers=options["workers"],
            )
        except (ValueError, FileNotFoundError, EngineError, FloatingPointError) as exc:
            raise CommandError(str(exc)) from exc
        if trainer.resumed_from is not None:
            self.stdout.write(f"Resumed from step {trainer.resumed_from}.")
        self.stdout.write(
            f"Trained to step {result.step} (epoch {result.epoch:.2f}) on "
            f"{trainer.replicas} replica(s), {trainer.policy}, {options['trainer']} trainer"
            f"{' on ' + _loaded_keras_backend() if options['trainer'] == 'keras' else ''}, "
            f"{result.images_per_second:.1f} images/s."
        )
        if result.losses:
            self.stdout.write(f"Last loss {result.losses[-1][1]:.4f}.")
        for record in result.evaluations:
            for name, scores in record["benchmarks"].items():
                self.stdout.write(
                    f"step {record['step']}: {name} {100 * scores['accuracy']:.2f}% "
                    f"± {100 * scores['std']:.2f} (threshold {scores['threshold']:.3f})"
                )
        self.stdout.write(
            f"Run folder: {options['out']} (export with manage.py export_model --run {options['out']} --name NAME)"
        )


def _detector():
    from faceengine.detection import FaceDetector
    from facesite.engine import detector_config

    return FaceDetector(detector_config())


def _choose_keras_backend(wanted: str | None) -> None:
    """Keras reads KERAS_BACKEND once, at its first import: set it before anything imports
    Keras, or refuse when this process has Keras loaded on another backend already."""
    backend = wanted or os.environ.get("KERAS_BACKEND") or "tensorflow"
    if backend not in KERAS_BACKENDS:
        raise CommandError(f"KERAS_BACKEND must be one of {', '.join(KERAS_BACKENDS)}, got {backend!r}.")
    if "keras" in sys.modules:
        loaded = _loaded_keras_backend()
        if loaded != backend:
            raise CommandError(
                f"Keras is already loaded on {loaded} in this process; run the command in a new "
                f"process for --keras-backend {backend}."
            )
        return
    os.environ["KERAS_BACKEND"] = backend


def _loaded_keras_backend() -> str:
    import keras

    return str(keras.backend.backend())
