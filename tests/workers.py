"""The worker stack of the tests: real Redis, real Celery worker processes against the test
database, the real engine. A pytest plugin (``pytest_plugins`` in tests/conftest.py), so the
worker and fault suites share one copy of these fixtures; the helpers are imported from here.
"""

from __future__ import annotations

import os
import time

import pytest
from django.conf import settings as django_settings

from recognition.models import RecognitionJob
from tests.conftest import require_file, use_broker, worker_database_url
from tests.stack import CeleryWorker, stack_env

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
        env = stack_env(
            database_url=database_url,
            broker_url=app.conf.broker_url,
            media_root=media_root,
            FACESITE_MODEL_DIR=str(django_settings.FACESITE_MODEL_DIR),
            FACESITE_TF_THREADS="1",
            **extra,
        )
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
            pytest.fail(
                f"the worker exited ({worker.process.returncode}) while waiting for {what}:\n" + worker.text()[-4000:]
            )
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
