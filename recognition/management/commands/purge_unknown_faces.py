"""manage.py purge_unknown_faces: delete unknown faces past the retention period, once."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from recognition.unknowns import unknown_faces_purge


class Command(BaseCommand):
    help = (
        "Delete unknown faces (their vectors and crops) older than --days days (default: "
        "FACESITE_UNKNOWN_RETENTION_DAYS; 0 keeps everything). Jobs, their photos and members are "
        "untouched. Beat runs the same every hour; safe to run at any time (cron)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, default=None, help="Retention in days (default: the setting).")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args, **options) -> None:
        report = unknown_faces_purge(days=options["days"])
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict()))
        elif report.older_than is None:
            self.stdout.write("Retention is off (0 days): nothing deleted.")
        else:
            self.stdout.write(f"Deleted {report.deleted} unknown face(s) stored before {report.older_than}.")
