"""GET /healthz and /readyz against the real test database, a real (closed or open) broker port
and the real model folder."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import model_dir

from .helpers import python

REDIS_HOST, REDIS_PORT = os.environ.get("FACESITE_TEST_REDIS", "127.0.0.1:6379").split(":")
REDIS_DB = int(os.environ.get("FACESITE_TEST_DEPLOY_REDIS_DB", "13"))
CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"


@pytest.fixture
def real_model(settings):
    from faceengine.model_fetch import is_installed
    from facesite.engine import active_model_spec

    if not is_installed(active_model_spec(), model_dir()):
        pytest.skip(f"The default model is not in {model_dir()}: run `manage.py fetch_models`")
    settings.FACESITE_MODEL_DIR = model_dir()


@pytest.fixture
def redis_broker(settings):
    import redis

    client = redis.Redis(host=REDIS_HOST, port=int(REDIS_PORT), db=REDIS_DB, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"Redis at {REDIS_HOST}:{REDIS_PORT} is unreachable ({exc})")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"


def test_healthz_is_cheap_and_anonymous(client):
    # No django_db mark: pytest-django makes any database access here raise.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-store" in response["Cache-Control"]
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
def test_readyz_all_ok_in_the_embedded_default(client, settings, real_model):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    checks = body["checks"]
    assert set(checks) == {"database", "broker", "model"}
    assert all(check["ok"] for check in checks.values())
    assert all(isinstance(check["latency_ms"], float) and check["latency_ms"] >= 0 for check in checks.values())
    assert checks["broker"]["skipped"] == "eager"
    assert checks["model"]["model"] == "mobilefacenet"


@pytest.mark.django_db
def test_readyz_pings_a_real_broker(client, settings, real_model, redis_broker):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    broker = response.json()["checks"]["broker"]
    assert broker["ok"] is True and "skipped" not in broker


@pytest.mark.django_db
def test_readyz_503_when_the_broker_port_is_closed(client, settings, real_model):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = CLOSED_PORT_BROKER
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["broker"]["error"] == "OperationalError"
    assert body["checks"]["database"]["ok"] is True and body["checks"]["model"]["ok"] is True
    assert "127.0.0.1" not in response.content.decode()  # no addresses or URLs in the answer


@pytest.mark.django_db
def test_readyz_503_when_the_model_file_is_missing(client, settings, tmp_path, monkeypatch):
    import functools

    from facesite import engine as runtime

    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.FACESITE_MODEL_DIR = tmp_path  # an empty model folder
    # A process whose engine is not loaded yet (an earlier test may have loaded the real one
    # here, and a loaded engine is ready whatever the folder holds); the real cache is kept.
    monkeypatch.setattr(runtime, "get_recognizer", functools.lru_cache(maxsize=4)(lambda *args, **kwargs: None))
    response = client.get("/readyz")
    assert response.status_code == 503
    model = response.json()["checks"]["model"]
    assert model["ok"] is False and "fetch_models" in model["error"]
    assert str(tmp_path) not in response.content.decode()


READY_SCRIPT = """
import json, sys, django
django.setup()
from django.test import Client
response = Client().get("/readyz")
print(json.dumps({"status": response.status_code, "body": response.json(),
                  "tensorflow": "tensorflow" in sys.modules}))
"""


def _readyz_in_a_fresh_process(**env: str) -> dict:
    base = {key: value for key, value in os.environ.items() if key not in ("CELERY_BROKER_URL",)}
    base.update(
        {
            "DJANGO_SETTINGS_MODULE": "facesite.settings.test",
            "FACESITE_MODEL_DIR": str(model_dir()),
            "CELERY_TASK_ALWAYS_EAGER": "1",
            **env,
        }
    )
    result = python(READY_SCRIPT, base)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_readyz_503_when_the_database_is_unreachable():
    """A real connection failure: the database URL points at a closed port."""
    out = _readyz_in_a_fresh_process(DATABASE_URL="mysql://facesite@127.0.0.1:1/facesite")
    assert out["status"] == 503
    database = out["body"]["checks"]["database"]
    assert database["ok"] is False and database["error"] == "OperationalError"
    assert "facesite@" not in json.dumps(out["body"])


@pytest.mark.slow
def test_readyz_does_not_load_tensorflow_unless_asked(tmp_path, real_model):
    db = f"sqlite:///{tmp_path / 'ready.sqlite3'}"
    out = _readyz_in_a_fresh_process(DATABASE_URL=db)
    assert out["status"] == 200, out
    assert out["body"]["checks"]["model"]["loaded"] is False
    assert out["tensorflow"] is False

    warmed = _readyz_in_a_fresh_process(DATABASE_URL=db, FACESITE_READINESS_LOAD_ENGINE="1", FACESITE_TF_THREADS="1")
    assert warmed["status"] == 200, warmed
    assert warmed["body"]["checks"]["model"]["loaded"] is True
    assert warmed["tensorflow"] is True
