"""Celery tasks of the recognition app: thin, they take an id and call a service.

They run on the ``recognition`` queue (``CELERY_TASK_ROUTES``), on workers that load the engine
once per process, at the first job. Time limits, acks_late and the serializer are set centrally.
"""
from __future__ import annotations

import logging

from celery import shared_task
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
