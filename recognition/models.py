"""Recognition jobs: one uploaded photo, its way through a worker, and the faces found in it.

Rows are written only by ``recognition.services``; pages, the API and tasks all call it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from facesite.uploads import generated_name


def job_photo_path(instance: RecognitionJob, filename: str) -> str:
    """A generated name under MEDIA_ROOT; ``filename`` is ``photo.<ext>`` from the sniffed format."""
    return generated_name("jobs", filename)


class RecognitionJob(models.Model):
    """A photo to recognise. The task claims it with a conditional update (queued -> running,
    or a running job whose worker died, seen by a claim older than the stale limit); every claim
    counts one attempt, and the result is written only by the holder of the latest claim."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="recognition_jobs"
    )
    photo = models.FileField(upload_to=job_photo_path, max_length=255)
    original_name = models.CharField(max_length=255, blank=True, help_text="Shown only, never used as a path.")
    image_width = models.PositiveIntegerField(null=True, blank=True)
    image_height = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    error_code = models.CharField(max_length=50, blank=True)
    error_message = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # When the job's message was last sent to the broker, and how often it was re-sent because
    # the message looked lost (a broker restarted without persistence): see jobs_requeue_stale.
    queued_at = models.DateTimeField(null=True, blank=True)
    requeues = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=255, blank=True, help_text="host:pid of the latest claim.")
    model_name = models.CharField(max_length=100, blank=True)
    # {"faces": [{"box", "score", "landmarks", "member_id", "member", "similarity"}, ...]}
    result = models.JSONField(null=True, blank=True)
    # Seconds per stage: queued, load, engine, store, total (upload to result).
    timings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"job {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)
