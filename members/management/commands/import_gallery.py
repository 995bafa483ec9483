"""manage.py import_gallery IN.zip: restore a gallery backup (idempotent, all or nothing)."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from members.backup import gallery_check, gallery_import
from members.errors import MemberError


class Command(BaseCommand):
    help = (
        "Restore a backup made by export_gallery. The whole archive is checked first; then photos and "
        "rows are written in one transaction, so a damaged archive changes nothing. Members and faces "
        "already here (same uuid) are left alone, so running it twice is harmless."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("archive", type=Path, help="The zip written by export_gallery.")
        parser.add_argument(
            "--reembed",
            action="store_true",
            help="Also embed every restored face with the active model (after a model change; loads the engine).",
        )
        parser.add_argument("--check", action="store_true", help="Only check the archive; change nothing.")
        parser.add_argument("--json", type=Path, dest="json_out", help="Also write the counts here as JSON.")

    def handle(self, *args, **options) -> None:
        archive: Path = options["archive"]
        if not archive.is_file():
            raise CommandError(f"{archive} is not a file.")
        try:
            if options["check"]:
                checked, summary = gallery_check(source=archive)
                members = checked.manifest["members"]
                self.stdout.write(
                    f"{archive} is valid: {len(members)} member(s), "
                    f"{sum(len(m['faces']) for m in members)} face(s), models {summary.models}."
                )
                return
            summary = gallery_import(source=archive, reembed=options["reembed"])
        except MemberError as exc:
            raise CommandError(exc.message) from exc
        for warning in summary.warnings:
            self.stderr.write(f"Warning: {warning}")
        self.stdout.write(
            f"Members created: {summary.members_created}, already here: {summary.members_existing}. "
            f"Faces created: {summary.faces_created}, already here: {summary.faces_existing}. "
            f"Embeddings: {summary.embeddings_created}, templates written: {summary.templates_written}. "
            f"Models: {', '.join(f'{n} ({d}-d)' for n, d in sorted(summary.models.items())) or 'none'}."
        )
        if options["reembed"]:
            self.stdout.write(
                f"Re-embedded with the active model: {summary.reembedded} face(s), "
                f"{len(summary.reembed_failed)} failed."
            )
        if options["json_out"]:
            options["json_out"].write_text(json.dumps(summary.as_dict(), indent=2))
            self.stdout.write(f"Wrote {options['json_out']}")
