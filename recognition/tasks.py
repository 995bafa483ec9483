"""Celery tasks of the recognition app: thin, they take an id and call a service.

They run on the ``recognition`` queue (``CELERY_TASK_ROUTES``), on workers that load the engine
once per process, at the first job. Time limits, acks_late and the serializer are set centrally.
Lost messages (a broker restarted without persistence) are re-sent by the requeue sweep, run
at worker start and by beat (CELERY_BEAT_SCHEDULE).
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from . import services

logger = logging.getLogger(__name__)


@shared_task(bind=True, name="recognition.tasks.run_job", max_retries=None)
def run_job(self, job_id: int) -> dict:
    """Recognise every face of a job's photo. Idempotent: a second delivery does nothing."""
    outcome = services.job_run(job_id=job_id)
    if outcome.state == "busy":
        # Another claim is fresh: its worker may still be running it. Look again once that
        # claim could be stale; bounded, because every claim counts one attempt.
        if self.request.retries < settings.FACESITE_JOB_MAX_ATTEMPTS * 2:
            raise self.retry(countdown=max(1.0, outcome.retry_in))
        logger.warning("Job %s still held by another worker; giving up looking.", job_id)
    return {"job_id": job_id, "state": outcome.state}


@shared_task(
    bind=True,
    name="recognition.tasks.run_video",
    max_retries=None,
    # A video runs far longer than a photo: its own limits (its heartbeat keeps it claimed).
    time_limit=settings.FACESITE_VIDEO_TIME_LIMIT,
    soft_time_limit=max(1, settings.FACESITE_VIDEO_TIME_LIMIT - 60),
)
def run_video(self, video_id: int) -> dict:
    """Recognise the people of a video job. Idempotent: a second delivery does nothing."""
    from . import videos

    outcome = videos.video_run(video_id=video_id)
    if outcome.state == "busy" and self.request.retries < settings.FACESITE_JOB_MAX_ATTEMPTS * 2:
        raise self.retry(countdown=max(1.0, outcome.retry_in))
    return {"video_id": video_id, "state": outcome.state}


@shared_task(name="recognition.tasks.requeue_stale_jobs")
def requeue_stale_jobs() -> dict:
    """Beat, every FACESITE_JOB_REQUEUE_INTERVAL s: re-send jobs (photos, videos) whose message was lost."""
    from . import videos

    return {**services.jobs_requeue_stale().as_dict(), "videos": videos.videos_requeue_stale().as_dict()}


@shared_task(name="recognition.tasks.cluster_unknown_faces")
def cluster_unknown_faces(face_ids: list[int]) -> dict:
    """After a job stored unknown faces: cluster them (and any left over) into unknown people."""
    from . import unknowns

    return unknowns.unknown_faces_cluster(face_ids=face_ids)


@shared_task(name="recognition.tasks.purge_unknown_faces")
def purge_unknown_faces() -> dict:
    """Beat, hourly: delete unknown faces older than FACESITE_UNKNOWN_RETENTION_DAYS."""
    from . import unknowns

    return unknowns.unknown_faces_purge().as_dict()


@worker_ready.connect(dispatch_uid="recognition.tasks.requeue_at_worker_start")
def requeue_at_worker_start(sender=None, **kwargs) -> None:
    """A worker that starts (after a crash, a deploy, a broker restart that took every worker
    down) sweeps once, so lost jobs do not wait for beat. A failure here must not stop the worker."""
    try:
        from . import videos

        report = services.jobs_requeue_stale()
        video_report = videos.videos_requeue_stale()
    except Exception:
        logger.exception("The requeue sweep at worker start failed.")
        return
    finally:
        from django.db import close_old_connections

        close_old_connections()  # this runs in the parent; the pool children get their own
    if report.requeued or report.failed:
        logger.warning("Requeue sweep at worker start: %s", report.as_dict())
    if video_report.requeued or video_report.failed:
        logger.warning("Video requeue sweep at worker start: %s", video_report.as_dict())
