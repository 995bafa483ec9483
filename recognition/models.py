"""Recognition jobs: one uploaded photo, its way through a worker, and the faces found in it.

Rows are written only by ``recognition.services``; pages, the API and tasks all call it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

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


def unknown_crop_path(instance: UnknownFace, filename: str) -> str:
    return generated_name("unknown", filename)


class UnknownCluster(models.Model):
    """A group of unknown faces taken to be one stranger (faceengine.clustering), of one model.

    ``size`` and ``representative`` are kept by ``recognition.unknowns`` whenever faces join or
    leave; a dismissed cluster is hidden from the page but keeps its faces, so the same stranger
    in later photos joins it instead of coming back as a new cluster."""

    model_name = models.CharField(max_length=100, db_index=True)
    dim = models.PositiveIntegerField()
    representative = models.ForeignKey(
        "UnknownFace", on_delete=models.SET_NULL, null=True, blank=True, related_name="represents"
    )
    size = models.PositiveIntegerField(default=0, db_index=True)
    dismissed = models.BooleanField(default=False, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-size", "id"]

    def __str__(self) -> str:
        return f"unknown cluster {self.pk} ({self.size} faces)"


class UnknownFace(models.Model):
    """An unknown face of a finished photo job (``job``, the face's index in its result) or an
    unknown person of a finished video (``video``, the appearance's index): its vector (model
    name + dim + float32 bytes, as members.Embedding; a video's is its track's mean), a small crop
    for the pages, and its cluster. Biometric data of someone who never agreed to be enrolled:
    deleted after FACESITE_UNKNOWN_RETENTION_DAYS."""

    job = models.ForeignKey(
        RecognitionJob, on_delete=models.CASCADE, null=True, blank=True, related_name="unknown_faces"
    )
    video = models.ForeignKey("VideoJob", on_delete=models.CASCADE, null=True, blank=True, related_name="unknown_faces")
    face_index = models.PositiveIntegerField()
    box = models.JSONField()
    score = models.FloatField(default=0.0, help_text="Detection score: the quality order within a cluster.")
    model_name = models.CharField(max_length=100)
    dim = models.PositiveIntegerField()
    vector = models.BinaryField()
    crop = models.FileField(upload_to=unknown_crop_path, max_length=255, blank=True)
    cluster = models.ForeignKey(UnknownCluster, on_delete=models.SET_NULL, null=True, blank=True, related_name="faces")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-score", "id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "face_index"], name="recognition_unknown_one_per_face"),
            models.UniqueConstraint(fields=["video", "face_index"], name="recognition_unknown_one_per_track"),
            models.CheckConstraint(
                condition=Q(job__isnull=False, video__isnull=True) | Q(job__isnull=True, video__isnull=False),
                name="recognition_unknown_one_source",
            ),
        ]
        indexes = [models.Index(fields=["model_name", "cluster"], name="recognition_unknown_model_idx")]

    def __str__(self) -> str:
        if self.video_id is not None:
            return f"unknown person {self.face_index + 1} of video {self.video_id}"
        return f"unknown face {self.face_index + 1} of job {self.job_id}"


class MemberAppearance(models.Model):
    """A member recognised in a job ("where does this person appear"), one row per face, so the
    member page does not scan every job's result JSON."""

    job = models.ForeignKey(RecognitionJob, on_delete=models.CASCADE, related_name="appearances")
    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="appearances")
    face_index = models.PositiveIntegerField()
    similarity = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "face_index"], name="recognition_appearance_one_per_face"),
        ]
        indexes = [models.Index(fields=["member", "job"], name="recognition_appearance_idx")]

    def __str__(self) -> str:
        return f"member {self.member_id} in job {self.job_id}"


def video_path(instance: VideoJob, filename: str) -> str:
    """A generated name under MEDIA_ROOT; ``filename`` is ``video.<ext>`` from the container."""
    return generated_name("videos", filename)


def video_thumbnail_path(instance: VideoAppearance, filename: str) -> str:
    return generated_name("video-thumbs", filename)


class VideoJob(models.Model):
    """An uploaded video to recognise, with the same guarantees as a photo job: claimed with a
    conditional update, one attempt per claim, the result written only by the latest claim
    holder. ``claimed_at`` is refreshed at every progress save (the heartbeat), so a long video
    is not taken for orphaned while its worker still runs; a worker killed mid-video leaves no
    appearance rows (they are written with the result, in one transaction) and the job runs
    again from the start on the next claim."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="video_jobs"
    )
    video = models.FileField(upload_to=video_path, max_length=255)
    original_name = models.CharField(max_length=255, blank=True, help_text="Shown only, never used as a path.")
    container = models.CharField(max_length=10, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    fps = models.FloatField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    sample_fps = models.FloatField(default=5.0)
    frames_total = models.PositiveIntegerField(default=0, help_text="Sampled frames to look at.")
    frames_processed = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    cancel_requested = models.BooleanField(default=False)
    error_code = models.CharField(max_length=50, blank=True)
    error_message = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    requeues = models.PositiveSmallIntegerField(default=0)  # re-sends of a lost message
    worker = models.CharField(max_length=255, blank=True)
    model_name = models.CharField(max_length=100, blank=True)
    # {"faces_seen": n, "tracks": n, "threshold": the 1:N threshold, "truncated": bool}
    result = models.JSONField(null=True, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="recognition_video_user_idx")]

    def __str__(self) -> str:
        return f"video {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED, self.Status.CANCELLED)


class VideoAppearance(models.Model):
    """A person seen in a video: one row per appearance (a track, or tracks of one member close
    in time), ``member`` null for somebody unknown; with the best frame's face as a thumbnail."""

    video = models.ForeignKey(VideoJob, on_delete=models.CASCADE, related_name="appearances")
    index = models.PositiveIntegerField()
    member = models.ForeignKey(
        "members.Member", on_delete=models.SET_NULL, null=True, blank=True, related_name="video_appearances"
    )
    member_name = models.CharField(max_length=200, blank=True, help_text="The name when it was recognised.")
    start_s = models.FloatField()
    end_s = models.FloatField()
    best_similarity = models.FloatField(null=True, blank=True)
    frames = models.PositiveIntegerField(default=0)
    box = models.JSONField(default=list, help_text="The thumbnail's face box in its frame.")
    thumbnail = models.FileField(upload_to=video_thumbnail_path, max_length=255, blank=True)

    class Meta:
        ordering = ["start_s", "index"]
        constraints = [
            models.UniqueConstraint(fields=["video", "index"], name="recognition_video_appearance_one"),
        ]
        indexes = [models.Index(fields=["member", "video"], name="recognition_video_member_idx")]

    def __str__(self) -> str:
        return f"appearance {self.index} of video {self.video_id}"
