"""Structured logs: the JSON formatter, the request id of a request and the job id of a task."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from django.core.exceptions import ImproperlyConfigured

from facesite.celery import app
from facesite.log import JsonFormatter, PlainFormatter, job_id_var, logging_config, request_id_var, task_id_var

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def json_lines():
    """Every record logged during the test, formatted by JsonFormatter when it is emitted
    (the ids are read then, as in production), parsed back."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    saved_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def lines() -> list[dict]:
        raw = stream.getvalue().splitlines()
        return [json.loads(line) for line in raw]  # each line must be one JSON object

    yield lines
    root.removeHandler(handler)
    root.setLevel(saved_level)


@pytest.fixture
def context_ids():
    tokens = [request_id_var.set("req-1"), job_id_var.set(7), task_id_var.set("task-1")]
    yield
    for var, token in zip((request_id_var, job_id_var, task_id_var), tokens, strict=True):
        var.reset(token)


def _record(message: str, *args, exc: bool = False, **extra) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError("kaput")
        except RuntimeError:
            import sys

            exc_info = sys.exc_info()
    record = logging.LogRecord("facesite.test", logging.ERROR, __file__, 1, message, args, exc_info)
    record.__dict__.update(extra)
    return record


def test_json_formatter_writes_one_object_with_every_field(context_ids):
    record = _record('a "quoted"\nmessage with %s', "args", exc=True, photo_count=3, odd=object())
    line = JsonFormatter().format(record)
    assert "\n" not in line  # one line per record, even with a newline and a traceback inside
    entry = json.loads(line)
    assert entry["message"] == 'a "quoted"\nmessage with args'
    assert entry["level"] == "ERROR" and entry["logger"] == "facesite.test"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["time"])
    assert (entry["request_id"], entry["job_id"], entry["task_id"]) == ("req-1", 7, "task-1")
    assert entry["user_id"] is None
    assert "RuntimeError: kaput" in entry["exc_info"] and "Traceback" in entry["exc_info"]
    assert entry["photo_count"] == 3 and entry["odd"].startswith("<object object")


def test_json_formatter_without_context_has_null_ids():
    entry = json.loads(JsonFormatter().format(_record("plain")))
    assert (entry["request_id"], entry["job_id"], entry["task_id"], entry["user_id"]) == (None, None, None, None)
    assert "exc_info" not in entry


def test_plain_formatter_is_readable_and_names_the_ids(context_ids):
    text = PlainFormatter().format(_record("hello %s", "world", exc=True))
    first, _, rest = text.partition("\n")
    assert first.endswith("ERROR facesite.test: hello world [request_id=req-1 job_id=7 task_id=task-1]")
    assert rest.startswith("Traceback")


def test_plain_formatter_outside_any_context_adds_nothing():
    assert PlainFormatter().format(_record("bare")).endswith("ERROR facesite.test: bare")


def test_logging_config_switch():
    assert logging_config("json")["formatters"]["default"]["()"] == "facesite.log.JsonFormatter"
    assert logging_config("plain")["formatters"]["default"]["()"] == "facesite.log.PlainFormatter"
    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT"):
        logging_config("xml")


# ------------------------------------------------------------------------------- request ids


@pytest.mark.urls("tests.deploy.urls")
def test_a_request_gets_an_id_and_its_log_lines_carry_it(client, json_lines):
    response = client.get("/log-probe")
    assert response.status_code == 200
    request_id = response["X-Request-ID"]
    assert GENERATED_ID.fullmatch(request_id)
    lines = json_lines()
    inside = [line for line in lines if line["logger"] == "tests.deploy.view"]
    assert [line["message"] for line in inside] == ["inside the view, authenticated=False", "a handled error"]
    assert all(line["request_id"] == request_id and line["user_id"] is None for line in inside)
    assert "ValueError: boom" in inside[1]["exc_info"]
    (access,) = [line for line in lines if line["logger"] == "facesite.request"]
    assert access["request_id"] == request_id
    assert (access["method"], access["path"], access["status"]) == ("GET", "/log-probe", 200)
    assert access["duration_ms"] >= 0
    # Cleared once the response is closed: nothing logged later claims this request.
    assert request_id_var.get() is None

    second = client.get("/log-probe")["X-Request-ID"]
    assert GENERATED_ID.fullmatch(second) and second != request_id


@pytest.mark.django_db
@pytest.mark.urls("tests.deploy.urls")
def test_log_lines_name_the_logged_in_user(client, django_user_model, json_lines):
    user = django_user_model.objects.create_user("alice", password="x-long-password-1")
    client.force_login(user)
    response = client.get("/log-probe")
    lines = [line for line in json_lines() if line["request_id"] == response["X-Request-ID"]]
    view_line = next(line for line in lines if line["logger"] == "tests.deploy.view")
    assert view_line["message"] == "inside the view, authenticated=True"
    assert view_line["user_id"] == user.pk
    assert next(line for line in lines if line["logger"] == "facesite.request")["user_id"] == user.pk


@pytest.mark.parametrize("incoming", ["3f2a9c1e-7b4d-4e8a-9c1f-2b3d4e5f6a7b", "Root=1-5759e988-bd862e3fe1be46a9"])
def test_a_sane_incoming_request_id_is_kept(client, incoming):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] == incoming


@pytest.mark.parametrize("incoming", ["has spaces in it", "x" * 129, "semi;colon", "<script>", ""])
def test_an_odd_incoming_request_id_is_replaced(client, incoming):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=incoming)
    assert GENERATED_ID.fullmatch(response["X-Request-ID"])


def test_djangos_not_found_warning_carries_the_request_id(client, json_lines):
    """Django logs "Not Found" after the middleware chain returned: the id must still be set."""
    response = client.get("/surely-no-such-page/", HTTP_X_REQUEST_ID="trace-404")
    assert response.status_code == 404
    assert response["X-Request-ID"] == "trace-404"
    warning = next(line for line in json_lines() if line["logger"] == "django.request")
    assert warning["message"].startswith("Not Found") and warning["request_id"] == "trace-404"


def test_health_probes_are_not_logged_when_they_succeed(client, json_lines):
    client.get("/healthz")
    assert not [line for line in json_lines() if line["logger"] == "facesite.request"]


def test_a_newline_in_the_path_cannot_forge_a_log_line(client, json_lines):
    client.get("/x%0Afake-line")
    (access,) = [line for line in json_lines() if line["logger"] == "facesite.request"]
    assert access["path"] == "/x\\x0afake-line"


# ------------------------------------------------------------------------------- Celery jobs

probe_logger = logging.getLogger("tests.deploy.task")


@app.task(name="recognition.tests.log_probe")
def recognition_probe(job_id: int) -> int:
    probe_logger.info("working on the job")
    return job_id


@app.task(name="members.tests.log_probe")
def members_probe(member_id: int) -> int:
    probe_logger.info("working on a member")
    return member_id


def test_recognition_task_lines_carry_the_job_and_task_id(eager_celery, json_lines):
    result = recognition_probe.delay(41)
    keyword = recognition_probe.apply_async(kwargs={"job_id": 42})
    lines = [line for line in json_lines() if line["logger"] == "tests.deploy.task"]
    assert [(line["job_id"], line["task_id"]) for line in lines] == [(41, result.id), (42, keyword.id)]
    # The pool process (here: this one) goes on to other work without them.
    assert job_id_var.get() is None and task_id_var.get() is None


def test_other_tasks_carry_the_task_id_only(eager_celery, json_lines):
    result = members_probe.delay(5)
    (line,) = [line for line in json_lines() if line["logger"] == "tests.deploy.task"]
    assert line["task_id"] == result.id and line["job_id"] is None


def test_an_eager_task_inside_a_request_gives_the_request_its_ids_back(eager_celery, json_lines):
    token = request_id_var.set("outer-request")
    try:
        recognition_probe.delay(9)
        assert request_id_var.get() == "outer-request" and job_id_var.get() is None
        probe_logger.info("after the task")
    finally:
        request_id_var.reset(token)
    task_line, after = [line for line in json_lines() if line["logger"] == "tests.deploy.task"]
    assert task_line["request_id"] == "outer-request" and task_line["job_id"] == 9
    assert after["job_id"] is None and after["task_id"] is None
