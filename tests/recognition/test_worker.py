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

from recognition.models import RecognitionJob
from tests.workers import check_group_result, job_in, upload_group, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.mysql]


def test_a_worker_recognises_an_uploaded_group_photo(start_worker, obama, redis_db):
    worker = start_worker()
    job = upload_group()
    job = wait_for(lambda: job_in(job.pk, "done", "failed"), 180, "the job to finish", worker)
    check_group_result(job, obama)
    assert job.attempts == 1 and job.worker and job.timings["engine"] > 0
    assert "recognition.tasks.run_job" in worker.text()
    # The message was acknowledged: nothing left on the queue or unacknowledged, once the
    # clustering of the job's unknown faces (queued when the job finished) has run too.
    wait_for(
        lambda: redis_db.llen("recognition") == 0 and redis_db.hlen("unacked") == 0, 60, "the queue to drain", worker
    )
    assert "recognition.tasks.cluster_unknown_faces" in worker.text()


def test_a_job_survives_its_worker_being_killed(start_worker, obama, redis_db):
    # Test hook: the first worker sleeps 60 s inside the running job; messages come back after
    # 10 s without an ack; a claim is stale after 8 s.
    timing = {
        "CELERY_VISIBILITY_TIMEOUT": "10",
        "CELERY_UNACKED_RESTORE_INTERVAL": "2",
        "CELERY_UNACKED_RESTORE_THROTTLE": "1",
        "FACESITE_JOB_STALE_AFTER": "8",
    }
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
    # Runs of the job's task only (a finished job also queues the clustering of its unknown faces).
    job_runs = [line for line in logs.splitlines() if "succeeded" in line and "'state': " in line]
    assert logs.count("'state': 'finished'") == len(job_runs) - 1
    wait_for(
        lambda: redis_db.llen("recognition") == 0 and redis_db.hlen("unacked") == 0, 60, "the queue to drain", second
    )


def _pool_children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_a_killed_pool_process_is_replaced_and_the_job_retried(start_worker, obama, redis_db):
    # Only the pool process running the job dies (out of memory, say): the worker's main process
    # puts the message back at once (reject_on_worker_lost); the new delivery finds a fresh claim,
    # waits until it is stale, then claims the job again and finishes it.
    # The test hook keeps every job 3 s in "running", so the kill lands mid-job.
    worker = start_worker(FACESITE_JOB_STALE_AFTER="6", CELERY_VISIBILITY_TIMEOUT="600", FACESITE_JOB_TEST_DELAY="3")
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
    timing = {
        "CELERY_VISIBILITY_TIMEOUT": "6",
        "CELERY_UNACKED_RESTORE_INTERVAL": "2",
        "CELERY_UNACKED_RESTORE_THROTTLE": "1",
        "FACESITE_JOB_STALE_AFTER": "4",
        "FACESITE_JOB_MAX_ATTEMPTS": "1",
    }
    first = start_worker(FACESITE_JOB_TEST_DELAY="60", **timing)
    job = upload_group()
    wait_for(lambda: job_in(job.pk, "running"), 120, "the first worker to claim the job", first)
    first.kill()
    second = start_worker(**timing)
    job = wait_for(lambda: job_in(job.pk, "done", "failed"), 120, "the job to be given up", second)
    assert job.status == "failed" and job.error_code == "interrupted"
    assert "interrupted 1 time(s)" in job.error_message and job.result is None
    assert RecognitionJob.objects.count() == 1
