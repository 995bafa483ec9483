"""manage.py export_model: put a trained (or the imported default) network into the model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from faceengine.embedders.registry import DEFAULT_MODEL
from faceengine.errors import EngineError


class Command(BaseCommand):
    help = (
        "Export an embedding network into FACESITE_MODEL_DIR as <name>.keras (or a SavedModel "
        "folder) plus <name>.json (input convention, dimension, thresholds), after which every "
        "command takes it with --model NAME (or FACESITE_MODEL=NAME). The network is a training "
        "run's backbone (--run) or the default MobileFaceNet.tflite rebuilt in Keras (--from-default)."
    )

    def add_arguments(self, parser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--run", type=Path, help="A training run folder holding backbone.keras and run.json.")
        source.add_argument(
            "--from-default",
            action="store_true",
            help="Import the default MobileFaceNet.tflite's weights into the Keras "
            "MobileFaceNet (same embeddings; runs on GPU, any batch size).",
        )
        parser.add_argument("--name", required=True, help="Name to serve the model under (not a builtin model's name).")
        parser.add_argument(
            "--format",
            choices=["keras", "savedmodel"],
            default="keras",
            help="keras: one <name>.keras file (default); savedmodel: a TF SavedModel folder <name>.",
        )
        parser.add_argument(
            "--threshold",
            type=float,
            default=None,
            help="1:1 verification threshold (cosine). Default: measured with "
            "--measure-lfw, else the default model's for --from-default, "
            "else the registry default.",
        )
        parser.add_argument(
            "--identification-threshold",
            type=float,
            default=None,
            help="1:N threshold (cosine). Default: the default model's for "
            "--from-default, else the registry default (never below the 1:1 one).",
        )
        parser.add_argument(
            "--measure-lfw",
            type=Path,
            metavar="PATH",
            help="An LFW folder (pairs.txt + images): run the 10-fold protocol "
            "through the whole pipeline (flip as FACESITE_FLIP) and store the "
            "mean per-fold threshold as the 1:1 threshold. Takes minutes.",
        )
        parser.add_argument("--pairs", default="pairs.txt", help="With --measure-lfw: the pairs file inside PATH.")
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args, **options) -> None:
        from facetrain.export import check_export_name, export_model, load_training_run

        model_dir = Path(settings.FACESITE_MODEL_DIR)
        verification = options["threshold"]
        identification = options["identification_threshold"]
        try:
            check_export_name(options["name"])  # before minutes of loading and measuring
            if options["from_default"]:
                from facetrain.tflite_import import import_default_model

                model = import_default_model(model_dir / DEFAULT_MODEL.filename)
                convention = DEFAULT_MODEL.convention
                source: dict[str, Any] = {"imported_from": DEFAULT_MODEL.filename, "sha256": DEFAULT_MODEL.sha256}
                # Same network, same vectors: the default's calibrated thresholds hold.
                verification = DEFAULT_MODEL.verification_threshold if verification is None else verification
                if identification is None:
                    identification = DEFAULT_MODEL.identification_threshold
            else:
                model, convention, run = load_training_run(options["run"])
                source = {
                    "run": str(options["run"].resolve()),
                    **{key: run[key] for key in ("backbone", "step", "classes") if key in run},
                }
            if options["measure_lfw"]:
                report = self._measure(model, convention, options)
                verification = report.result.threshold
                source["lfw"] = {
                    "accuracy": report.result.accuracy,
                    "std": report.result.std,
                    "threshold": report.result.threshold,
                    "flip": settings.FACESITE_ENGINE["FLIP"],
                }
            spec = export_model(
                model,
                name=options["name"],
                model_dir=model_dir,
                convention=convention,
                verification_threshold=verification,
                identification_threshold=identification,
                fmt=options["format"],
                source=source,
            )
        except (EngineError, ValueError, FileNotFoundError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Exported {spec.name} ({spec.backend}, {spec.dim}-d) to {model_dir / spec.filename}; "
                f"thresholds 1:1 {spec.verification_threshold:.3f}, 1:N {spec.identification_threshold:.3f}. "
                f"Use it with --model {spec.name} or FACESITE_MODEL={spec.name}."
            )
        )

    def _measure(self, model, convention, options):
        from facesite.engine import detector_config
        from facetrain.export import measure_lfw

        lfw_dir: Path = options["measure_lfw"]
        if not lfw_dir.is_dir():
            raise CommandError(f"{lfw_dir} is not a folder.")
        self.stdout.write(f"Measuring on LFW ({lfw_dir / options['pairs']}) ...")
        report = measure_lfw(
            model,
            lfw_dir=lfw_dir,
            convention=convention,
            detector_config=detector_config(),
            flip=settings.FACESITE_ENGINE["FLIP"],
            pairs_file=options["pairs"],
            progress=lambda items: tqdm(
                items, desc="lfw", unit="img", disable=options["no_progress"], file=self.stderr._out
            ),
        )
        result = report.result
        self.stdout.write(
            f"LFW: accuracy {100 * result.accuracy:.2f}% ± {100 * result.std:.2f}, "
            f"threshold {result.threshold:.3f}, fallbacks {report.fallbacks}"
        )
        return report
