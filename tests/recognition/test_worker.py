"""Real Celery worker processes, real Redis, real MariaDB, the real engine on real photos.

Each test starts ``celery -A facesite worker -Q recognition -c 1 --pool prefork`` against the
test database and its own Redis database number (flushed before and after, nothing else).
Skipped, saying why, when the database is not MySQL/MariaDB or Redis cannot be reached.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from django.conf import settings as django_settings

from recognition.models import RecognitionJob
from tests.conftest import require_file, use_broker, worker_database_url
from tests.members.conftest import _own_media_root, fresh_gallery_cache  # noqa: F401  (fixtures)
from tests.stack import CeleryWorker, stack_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.mysql]

REDIS_HOST, REDIS_PORT = os.environ.get("FACESITE_TEST_REDIS", "127.0.0.1:6379").split(":")
REDIS_DB = int(os.environ.get("FACESITE_TEST_REDIS_DB", "5"))
BROKER_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
FR = "samples/face_recognition/examples"
GROUP = f"{FR}/knn_examples/test/obama_and_biden.jpg"  # Biden, Obama and a girl in the shadow


def _redis():
    try:
        import redis
    except ImportError:
        pytest.skip("the redis package is not installed")
    client = redis.Redis(host=REDIS_HOST, port=int(REDIS_PORT), db=REDIS_DB, socket_connect_timeout=2)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no Redis here"
        pytest.skip(f"Redis at {REDIS_HOST}:{REDIS_PORT} is unreachable ({exc}); worker tests need it")
    return client


@pytest.fixture
def redis_db():
    client = _redis()
    client.flushdb()  # our own db number only
    yield client
    client.flushdb()


@pytest.fixture
def broker(redis_db):
    """This test process sends to Redis instead of running tasks eagerly."""
    from facesite.celery import app

    restore = use_broker(BROKER_URL)
    yield app
    restore()


@pytest.fixture
def engine_ready():
    from faceengine.model_fetch import is_installed
    from facesite.engine import active_model_spec

    spec = active_model_spec()
    if not is_installed(spec, django_settings.FACESITE_MODEL_DIR):
        pytest.skip(f"The default model is not in {django_settings.FACESITE_MODEL_DIR}: run `manage.py fetch_models`")


@pytest.fixture
def start_worker(broker, engine_ready, media_root, tmp_path):
    """Starts workers on the broker this process sends to (a module may override ``broker``)."""
    from facesite.celery import app

    database_url = worker_database_url()
    workers: list[CeleryWorker] = []

    def start(**extra: str) -> CeleryWorker:
        env = stack_env(database_url=database_url, broker_url=app.conf.broker_url, media_root=media_root,
                        FACESITE_MODEL_DIR=str(django_settings.FACESITE_MODEL_DIR), FACESITE_TF_THREADS="1",
                        **extra)
        worker = CeleryWorker(env, tmp_path / f"worker-{len(workers) + 1}.log")
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def wait_for(predicate, timeout: float, what: str, worker: CeleryWorker | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if worker is not None and worker.process.poll() is not None:
            pytest.fail(f"the worker exited ({worker.process.returncode}) while waiting for {what}:\n"
                        + worker.text()[-4000:])
        time.sleep(0.3)
    logs = worker.text()[-4000:] if worker else ""
    pytest.fail(f"timed out after {timeout} s waiting for {what}\n{logs}")


def job_in(job_id: int, *statuses: str) -> RecognitionJob | None:
    job = RecognitionJob.objects.get(pk=job_id)
    return job if job.status in statuses else None


@pytest.fixture
def obama(engine_ready, media_root):
    """Obama enrolled from one portrait (the real engine, in this process)."""
    from members.services import member_create

    return member_create(display_name="Barack Obama", photos=[require_file(f"{FR}/obama.jpg")]).member


def upload_group(user=None) -> RecognitionJob:
    from recognition.services import job_create

    with open(require_file(GROUP), "rb") as handle:
        return job_create(user=user, upload=handle)


def check_group_result(job: RecognitionJob, obama) -> None:
    assert job.status == "done", (job.error_code, job.error_message)
    faces = job.result["faces"]
    assert len(faces) == 3
    named = [f for f in faces if f["member_id"] is not None]
    assert [(f["member_id"], f["member"]) for f in named] == [(obama.pk, "Barack Obama")]
    assert named[0]["similarity"] >= 0.5


def test_a_worker_recognises_an_uploaded_group_photo(start_worker, obama, redis_db):
    worker = start_worker()
    job = upload_group()
    job = wait_for(lambda: job_in(job.pk, "done", "failed"), 180, "the job to finish", worker)
    check_group_result(job, obama)
    assert job.attempts == 1 and job.worker and job.timings["engine"] > 0
    assert "recognition.tasks.run_job" in worker.text()
    # The message was acknowledged: nothing left on the queue or unacknowledged.
    assert redis_db.llen("recognition") == 0 and redis_db.hlen("unacked") == 0


def test_a_job_survives_its_worker_being_killed(start_worker, obama, redis_db):
    # Test hook: the first worker sleeps 60 s inside the running job; messages come back after
    # 10 s without an ack; a claim is stale after 8 s.
    timing = {"CELERY_VISIBILITY_TIMEOUT": "10", "CELERY_UNACKED_RESTORE_INTERVAL": "2",
              "CELERY_UNACKED_RESTORE_THROTTLE": "1", "FACESITE_JOB_STALE_AFTER": "8"}
    first = start_worker(FACESITE_JOB_TEST_DELAY="60", **timing)
    job = upload_group()
    running = wait_for(lambda: job_in(job.pk, "running"), 120, "the first worker to claim the job", first)
    assert running.attempts == 1
    first.kill()
    assert first.process.returncode == -signal.SIGKILL
    assert job_in(job.pk, "running") is not None  # the dead worker left it claimed, not lost
    assert redis_db.hlen("unacked") == 1  # and its message unacknowledged

    second = start_worker(**timing)
    job = wait_for(lambda: job_in(job.pk, "done", "failed"), 240, "the second worker to finish the job", second)
    check_group_result(job, obama)
    assert job.attempts == 2 and job.worker != running.worker
    assert RecognitionJob.objects.count() == 1
    # Let one more restore sweep pass: nothing is delivered or written again.
    time.sleep(5)
    again = RecognitionJob.objects.get(pk=job.pk)
    assert (again.attempts, again.finished_at, again.result) == (job.attempts, job.finished_at, job.result)
    # The job ran to the end exactly once; any further delivery (the restore sweep may hand the
    # message out again while the second worker is still busy) found it finished and did nothing.
    logs = first.text() + second.text()
    assert logs.count("'state': 'done'") == 1, logs[-4000:]
    assert logs.count("'state': 'finished'") == logs.count("succeeded") - 1
    assert redis_db.llen("recognition") == 0 and redis_db.hlen("unacked") == 0


def _pool_children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_a_killed_pool_process_is_replaced_and_the_job_retried(start_worker, obama, redis_db):
    # Only the pool process running the job dies (out of memory, say): the worker's main process
    # puts the message back at once (reject_on_worker_lost); the new delivery finds a fresh claim,
    # waits until it is stale, then claims the job again and finishes it.
    # The test hook keeps every job 3 s in "running", so the kill lands mid-job.
    worker = start_worker(FACESITE_JOB_STALE_AFTER="6", CELERY_VISIBILITY_TIMEOUT="600",
                          FACESITE_JOB_TEST_DELAY="3")
    # Warm up: the model is loaded, and the pool process is the one that runs the next job.
    first = upload_group()
    wait_for(lambda: job_in(first.pk, "done"), 180, "the warm-up job", worker)
    children = _pool_children(worker.process.pid)
    assert len(children) == 1
    job = upload_group()
    wait_for(lambda: job_in(job.pk, "running", "done"), 60, "the claim", worker)
    os.kill(children[0], signal.SIGKILL)
    job = wait_for(lambda: job_in(job.pk, "done", "failed"), 120, "the retried job", worker)
    if job.attempts == 1:
        pytest.skip("the job finished before its pool process could be killed (machine too fast)")
    check_group_result(job, obama)
    assert job.attempts == 2
    assert "WorkerLostError" in worker.text() or "exited prematurely" in worker.text()


def test_a_job_interrupted_too_often_fails_with_the_reason(start_worker, obama, redis_db):
    timing = {"CELERY_VISIBILITY_TIMEOUT": "6", "CELERY_UNACKED_RESTORE_INTERVAL": "2",
              "CELERY_UNACKED_RESTORE_THROTTLE": "1", "FACESITE_JOB_STALE_AFTER": "4",
              "FACESITE_JOB_MAX_ATTEMPTS": "1"}
    first = start_worker(FACESITE_JOB_TEST_DELAY="60", **timing)
    job = upload_group()
    wait_for(lambda: job_in(job.pk, "running"), 120, "the first worker to claim the job", first)
    first.kill()
    second = start_worker(**timing)
    job = wait_for(lambda: job_in(job.pk, "done", "failed"), 120, "the job to be given up", second)
    assert job.status == "failed" and job.error_code == "interrupted"
    assert "interrupted 1 time(s)" in job.error_message and job.result is None
    assert RecognitionJob.objects.count() == 1
