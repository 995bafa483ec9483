"""manage.py requeue_jobs: re-send recognition jobs (photos and videos) whose queue message was lost."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from recognition.services import jobs_requeue_stale
from recognition.videos import videos_requeue_stale


class Command(BaseCommand):
    help = (
        "Re-send recognition jobs (photos, then videos) left queued (or claimed by a worker long gone) for longer than "
        "--older-than seconds, e.g. after Redis restarted without persistence; jobs already re-sent "
        "--max-requeues times are failed with the reason instead. Safe to run at any time (cron)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--older-than",
            type=float,
            default=None,
            help="Seconds since a job was last sent (default: FACESITE_JOB_REQUEUE_AFTER).",
        )
        parser.add_argument(
            "--max-requeues",
            type=int,
            default=None,
            help="Re-sends before a job is failed as lost (default: FACESITE_JOB_MAX_REQUEUES).",
        )
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args, **options) -> None:
        report = jobs_requeue_stale(requeue_after=options["older_than"], max_requeues=options["max_requeues"])
        # Videos follow their own staleness (a heartbeat, FACESITE_VIDEO_STALE_AFTER) and the settings.
        videos = videos_requeue_stale() if not report.broker_down else None
        if options["json"]:
            self.stdout.write(json.dumps({**report.as_dict(), "videos": videos.as_dict() if videos else None}))
        else:
            self.stdout.write(f"Re-sent {len(report.requeued)} job(s), failed {len(report.failed)} as lost.")
            if videos is not None:
                self.stdout.write(f"Re-sent {len(videos.requeued)} video(s), failed {len(videos.failed)} as lost.")
        if report.broker_down or (videos is not None and videos.broker_down):
            raise CommandError("The broker could not be reached; the remaining jobs were left for the next run.")
