"""manage.py export_gallery OUT.zip: every member, face photo, embedding and template in one zip."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from members.backup import gallery_export
from members.errors import MemberError


class Command(BaseCommand):
    help = (
        "Back up the gallery to a zip: members, their face photos (byte for byte), and every model's "
        "embeddings and templates with the model name and dimension. Restore it with import_gallery, "
        "here or on another server."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "out",
            type=Path,
            help="The archive to write (e.g. gallery-2026-11-30.zip); replaced only once the new one is complete.",
        )
        parser.add_argument("--active-only", action="store_true", help="Leave out inactive members.")

    def handle(self, *args, **options) -> None:
        out: Path = options["out"]
        if not out.parent.is_dir():
            raise CommandError(f"{out.parent} is not a folder.")
        try:
            summary = gallery_export(out=out, include_inactive=not options["active_only"])
        except MemberError as exc:
            raise CommandError(exc.message) from exc
        models = (
            ", ".join(
                f"{name} ({info['dim']}-d: {info['embeddings']} embeddings, {info['templates']} templates)"
                for name, info in sorted(summary.models.items())
            )
            or "none"
        )
        self.stdout.write(
            f"Exported {summary.members} member(s) and {summary.faces} face photo(s) to {out} "
            f"({summary.bytes / 1e6:.1f} MB). Models: {models}."
        )
