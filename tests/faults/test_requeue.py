"""The requeue sweep: jobs whose queue message was lost are sent again, once, or failed with the reason.

A real broker (Redis db 15 on the test Redis, flushed; FACESITE_TEST_REDIS to move it) receives the
messages; no worker runs, so what the sweep sent is read back from the queue itself.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from recognition.models import RecognitionJob
from recognition.services import job_create, jobs_requeue_stale
from tests.conftest import require_file, use_broker
from tests.faults.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit must fire: the send is after it

REDIS = os.environ.get("FACESITE_TEST_REDIS", "127.0.0.1:6379")
REDIS_DB = int(os.environ.get("FACESITE_FAULTS_REDIS_DB", "15"))
PHOTO = "samples/face_recognition/examples/obama_small.jpg"


@pytest.fixture
def queue():
    redis = pytest.importorskip("redis")
    host, port = REDIS.split(":")
    client = redis.Redis(host=host, port=int(port), db=REDIS_DB, socket_connect_timeout=2)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"Redis at {REDIS} is unreachable ({exc})")
    client.flushdb()  # our own db number only
    restore = use_broker(f"redis://{REDIS}/{REDIS_DB}")
    yield client
    restore()
    client.flushdb()


def queued_job_ids(client) -> list[int]:
    """The job ids of the run_job messages waiting on the recognition queue."""
    ids = []
    for raw in client.lrange("recognition", 0, -1):
        message = json.loads(raw)
        assert message["headers"]["task"] == "recognition.tasks.run_job"
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        ids.append(args[0])
    return sorted(ids)


def new_job() -> RecognitionJob:
    with open(require_file(PHOTO), "rb") as photo:
        return job_create(user=None, upload=photo)


def age(job: RecognitionJob, seconds: float, **fields) -> None:
    """Pretend the job was sent ``seconds`` ago."""
    past = timezone.now() - timedelta(seconds=seconds)
    RecognitionJob.objects.filter(pk=job.pk).update(created_at=past, queued_at=past, **fields)


def test_a_lost_message_is_sent_again_once(queue, settings):
    job = new_job()
    assert queued_job_ids(queue) == [job.pk]
    queue.flushdb()  # the broker restarted without persistence: the message is gone
    age(job, 60)
    report = jobs_requeue_stale(requeue_after=30)
    assert report.requeued == [job.pk] and report.failed == [] and not report.broker_down
    assert queued_job_ids(queue) == [job.pk]
    job.refresh_from_db()
    assert job.status == "queued" and job.requeues == 1
    assert (timezone.now() - job.queued_at).total_seconds() < 5
    # A second sweep right away sends nothing: the job was just sent.
    assert jobs_requeue_stale(requeue_after=30).requeued == []
    assert queued_job_ids(queue) == [job.pk]


def test_only_lost_looking_jobs_are_touched(queue, settings):
    settings.FACESITE_JOB_STALE_AFTER = 100
    fresh, old, stale_claim, live_claim, done = (new_job() for _ in range(5))
    queue.flushdb()
    age(old, 60)
    now = timezone.now()
    age(stale_claim, 600, status="running", attempts=1, claimed_at=now - timedelta(seconds=200))
    age(live_claim, 600, status="running", attempts=1, claimed_at=now - timedelta(seconds=10))
    age(done, 600, status="done", result={"faces": []}, finished_at=now)
    report = jobs_requeue_stale(requeue_after=30)
    assert sorted(report.requeued) == sorted([old.pk, stale_claim.pk])
    assert queued_job_ids(queue) == sorted([old.pk, stale_claim.pk])
    assert RecognitionJob.objects.get(pk=fresh.pk).requeues == 0


def test_a_job_resent_too_often_fails_with_the_reason(queue):
    job = new_job()
    queue.flushdb()
    age(job, 60, requeues=3)
    report = jobs_requeue_stale(requeue_after=30, max_requeues=3)
    assert report.failed == [job.pk] and report.requeued == []
    job.refresh_from_db()
    assert job.status == "failed" and job.error_code == "lost"
    assert "queue message was lost" in job.error_message and "3 time(s)" in job.error_message
    assert job.finished_at is not None and queued_job_ids(queue) == []


def test_a_job_created_while_the_broker_is_down_is_kept_and_sent_later(queue, media_root):
    from facesite.celery import app

    restore = use_broker(f"redis://127.0.0.1:{free_port(6490)}/0")  # nothing listens there
    saved_timeout, app.conf.broker_connection_timeout = app.conf.broker_connection_timeout, 1
    try:
        job = new_job()  # the upload is not refused: the row and the photo are kept
        assert RecognitionJob.objects.filter(pk=job.pk, status="queued").exists()
        assert (media_root / job.photo.name).is_file()
        age(job, 60)
        report = jobs_requeue_stale(requeue_after=30)
        assert report.broker_down and report.requeued == []
        job.refresh_from_db()
        assert job.requeues == 0  # a refused send is not counted against the job
    finally:
        app.conf.broker_connection_timeout = saved_timeout
        restore()
    call_command("requeue_jobs", "--older-than", "0")  # the broker is back
    assert queued_job_ids(queue) == [job.pk]
    assert RecognitionJob.objects.get(pk=job.pk).requeues == 1
