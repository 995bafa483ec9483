"""A real Celery worker with LOG_FORMAT=json: its lines are JSON and a job's lines carry the job
id and the task id. Needs MariaDB (the worker must see the test database) and Redis (db 13 by
default, FACESITE_TEST_DEPLOY_REDIS_DB; flushed before and after, nothing else)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from facesite.log import request_id_var
from tests.conftest import ROOT, worker_database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.mysql]

REDIS_HOST, REDIS_PORT = os.environ.get("FACESITE_TEST_REDIS", "127.0.0.1:6379").split(":")
REDIS_DB = int(os.environ.get("FACESITE_TEST_DEPLOY_REDIS_DB", "13"))
BROKER_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
MISSING_JOB = 987654321


@pytest.fixture
def redis_db():
    import redis

    client = redis.Redis(host=REDIS_HOST, port=int(REDIS_PORT), db=REDIS_DB, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"Redis at {REDIS_HOST}:{REDIS_PORT} is unreachable ({exc})")
    client.flushdb()
    yield client
    client.flushdb()


def test_worker_lines_are_json_with_the_job_id(redis_db, tmp_path):
    from celery import Celery

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "facesite.settings.test",
        "DATABASE_URL": worker_database_url(),
        "CELERY_BROKER_URL": BROKER_URL,
        "LOG_FORMAT": "json",
        "FACESITE_LOG_LEVEL": "INFO",
    }
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    log = tmp_path / "worker.log"
    with open(log, "wb") as handle:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "facesite",
                "worker",
                "-Q",
                "recognition",
                "-c",
                "1",
                "--pool",
                "prefork",
                "-n",
                f"deploy-{uuid.uuid4().hex[:8]}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # A job that does not exist: the task logs that and returns, without loading the engine.
        # Queued "during" a web request: the worker's lines name that request too.
        # Not the current app: shared tasks sent later in the session must keep using facesite's.
        sender = Celery("deploy-test", broker=BROKER_URL, set_as_current=False)
        token = request_id_var.set("upload-request-1")
        try:
            task_id = sender.send_task("recognition.tasks.run_job", args=[MISSING_JOB], queue="recognition").id
        finally:
            request_id_var.reset(token)
        deadline = time.monotonic() + 120
        entries: list[dict] = []
        while time.monotonic() < deadline:
            assert worker.poll() is None, log.read_text(errors="replace")[-4000:]
            entries = [
                json.loads(line) for line in log.read_text(errors="replace").splitlines() if line.startswith("{")
            ]
            if any(f"Job {MISSING_JOB} no longer exists" in entry["message"] for entry in entries):
                break
            time.sleep(0.5)
        else:
            pytest.fail("the worker never ran the task:\n" + log.read_text(errors="replace")[-4000:])
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)

    gone = next(entry for entry in entries if f"Job {MISSING_JOB} no longer exists" in entry["message"])
    assert gone["logger"] == "recognition.services" and gone["level"] == "INFO"
    assert gone["job_id"] == MISSING_JOB and gone["task_id"] == task_id
    assert gone["request_id"] == "upload-request-1"
    # Celery's own lines about the task come through the same formatter.
    done = [entry for entry in entries if entry["logger"] == "celery.app.trace" and task_id in entry["message"]]
    assert done and "succeeded" in done[0]["message"]
    # Everything the worker logged is JSON: the only other lines are its start-up banner.
    text_lines = [
        line for line in log.read_text(errors="replace").splitlines() if line.strip() and not line.startswith("{")
    ]
    assert not [line for line in text_lines if " INFO " in line or " WARNING " in line or "ERROR" in line], text_lines
