"""manage.py enroll_folder DIR: one member per sub-folder, a progress bar and a summary."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from faceengine.errors import EngineError
from members.errors import MemberError
from members.services import ON_EXISTING, folder_enroll, person_files


class Command(BaseCommand):
    help = (
        "Enrol members from a folder with one sub-folder per person (the sub-folder's name, "
        "underscores as spaces, is the display name and its exact name the external id). "
        "Each photo gives one face, the largest; photos without a face or that cannot be read "
        "are listed at the end with the reason. Re-running skips members already enrolled. "
        "For very big folders, queue members.tasks.enroll_folder_task instead (--queue)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("folder", type=Path, help="The folder holding one sub-folder per person.")
        parser.add_argument(
            "--on-existing",
            choices=ON_EXISTING,
            default="skip",
            help="What to do with a person already enrolled (same external id): "
            "skip them (default), add the photos (averaging), or replace "
            "their faces.",
        )
        parser.add_argument(
            "--queue",
            action="store_true",
            help="Queue the work as a Celery task (the worker must see the folder) and return at once.",
        )
        parser.add_argument("--json", type=Path, dest="json_out", help="Also write the summary here as JSON.")
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args, **options) -> None:
        folder: Path = options["folder"].resolve()
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder.")
        if options["queue"]:
            from members.tasks import enroll_folder_task

            result = enroll_folder_task.delay(str(folder), options["on_existing"])
            self.stdout.write(f"Queued enroll_folder for {folder} (task {result.id}).")
            return
        total = sum(len(person_files(p)) if p.is_dir() else 1 for p in folder.iterdir() if not p.name.startswith("."))
        with tqdm(total=total, unit="photo", disable=options["no_progress"], file=self.stderr._out) as bar:
            try:
                summary = folder_enroll(root=folder, on_existing=options["on_existing"], progress=bar.update)
            except (MemberError, EngineError) as exc:
                raise CommandError(str(exc)) from exc

        self.stdout.write(
            f"Members created: {summary.members_created}, updated: {summary.members_updated}, "
            f"already enrolled (skipped): {summary.members_skipped}, without a usable photo: "
            f"{summary.members_failed}. Photos added: {summary.photos_added}, skipped: "
            f"{len(summary.skipped_files)}."
        )
        if summary.skipped_files:
            reasons = ", ".join(f"{code}: {count}" for code, count in summary.reasons().most_common())
            self.stdout.write(f"Skipped files by reason: {reasons}")
            for item in summary.skipped_files:
                self.stdout.write(f"  {item.path}: {item.code} ({item.message})")
        if options["json_out"]:
            options["json_out"].write_text(json.dumps(summary.as_dict(), indent=2))
            self.stdout.write(f"Wrote {options['json_out']}")
