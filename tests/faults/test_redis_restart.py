"""Redis (the broker, without persistence) restarted while jobs wait on it: no job is lost.

A private Redis is the broker; jobs are queued with no worker running, Redis is killed and
started again (empty: the messages are gone), then a worker starts. Its start-up requeue sweep
(recognition.tasks.requeue_at_worker_start) sends the lost jobs again and every one is done,
exactly once; with no re-sends left, each is failed with the reason instead. Real engine, real
photos, the test database on MySQL/MariaDB (a worker process cannot see SQLite's).
"""

from __future__ import annotations

import pytest

from recognition.models import RecognitionJob
from tests.conftest import use_broker
from tests.workers import check_group_result, job_in, upload_group, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.mysql]
JOBS = 3


@pytest.fixture
def broker(redis_server):
    restore = use_broker(redis_server.url(0))
    yield redis_server
    restore()


def queue_then_lose_messages(broker) -> list[int]:
    ids = [upload_group().pk for _ in range(JOBS)]
    client = broker.client(0)
    assert client.llen("recognition") == JOBS  # queued on the broker, nobody consumes them
    broker.restart()  # SIGKILL + a fresh, empty Redis on the same port
    assert broker.starts == 2 and broker.client(0).llen("recognition") == 0
    assert list(RecognitionJob.objects.filter(pk__in=ids).values_list("status", flat=True)) == ["queued"] * JOBS
    return ids


def test_jobs_lost_with_a_redis_restart_are_sent_again_and_done_once(start_worker, broker, obama):
    ids = queue_then_lose_messages(broker)
    worker = start_worker(FACESITE_JOB_REQUEUE_AFTER="0")
    jobs = [wait_for(lambda pk=pk: job_in(pk, "done", "failed"), 300, f"job {pk}", worker) for pk in ids]
    for job in jobs:
        check_group_result(job, obama)
        assert (job.attempts, job.requeues) == (1, 1)
    log = worker.text()
    assert "re-sent: its message looked lost" in log
    assert log.count("'state': 'done'") == JOBS  # each job ran to the end once, no duplicate result
    # Nothing left queued once the clustering of the jobs' unknown faces (queued as each finished) ran.
    wait_for(lambda: broker.client(0).llen("recognition") == 0, 60, "the queue to drain", worker)


def test_jobs_lost_too_often_are_failed_with_the_reason(start_worker, broker, engine_ready):
    ids = queue_then_lose_messages(broker)
    RecognitionJob.objects.filter(pk__in=ids).update(requeues=2)  # two earlier re-sends were lost too
    worker = start_worker(FACESITE_JOB_REQUEUE_AFTER="0", FACESITE_JOB_MAX_REQUEUES="2")
    jobs = [wait_for(lambda pk=pk: job_in(pk, "done", "failed"), 120, f"job {pk}", worker) for pk in ids]
    for job in jobs:
        assert job.status == "failed" and job.error_code == "lost", (job.status, job.error_code)
        assert "queue message was lost" in job.error_message and job.result is None
    assert RecognitionJob.objects.filter(status__in=["queued", "running"]).count() == 0
