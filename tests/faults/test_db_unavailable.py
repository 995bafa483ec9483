"""The database cannot be reached: every request gets a clean 503 and the next one recovers.

In process, on the real stack: the request thread's database connection is swapped for a
MySQL connection to a port where nothing listens (a real "connection refused", error 2002/2003),
then swapped back. The private-MariaDB test (test_mariadb_restart.py) kills a real server.
"""

from __future__ import annotations

import pytest
from django.db import connections
from django.db.utils import OperationalError, ProgrammingError
from rest_framework.test import APIClient

from accounts.services import token_create
from facesite.db_unavailable import is_database_unavailable
from tests.faults.servers import free_port

pytestmark = pytest.mark.django_db


def _dead_settings() -> dict:
    """A complete MySQL settings dict for a port where nothing listens."""
    return connections.configure_settings(
        {
            "default": {
                "ENGINE": "django.db.backends.mysql",
                "NAME": "gone",
                "USER": "root",
                "HOST": "127.0.0.1",
                "PORT": str(free_port(3390)),
                "OPTIONS": {"connect_timeout": 2},
            }
        }
    )["default"]


@pytest.fixture
def refused_connection():
    """Swap the default connection for one to a dead port; put the real one back after."""
    pytest.importorskip("MySQLdb")
    from django.db.backends.mysql.base import DatabaseWrapper

    settings_dict = _dead_settings()
    real = connections["default"]

    class Switch:
        def down(self) -> None:
            connections["default"] = DatabaseWrapper(settings_dict, alias="default")

        def up(self) -> None:
            connections["default"].close()
            connections["default"] = real

    switch = Switch()
    yield switch
    switch.up()


def _refused_error() -> OperationalError:
    from django.db.backends.mysql.base import DatabaseWrapper

    wrapper = DatabaseWrapper(_dead_settings(), alias="dead")
    try:
        wrapper.ensure_connection()
    except OperationalError as exc:
        return exc
    finally:
        wrapper.close()
    pytest.fail("connecting to a dead port did not fail")


def test_connection_errors_count_as_unavailable_and_bad_queries_do_not():
    pytest.importorskip("MySQLdb")
    refused = _refused_error()
    assert refused.args[0] in (2002, 2003)
    assert is_database_unavailable(refused)
    assert not is_database_unavailable(OperationalError(1054, "Unknown column 'x' in 'field list'"))
    assert not is_database_unavailable(OperationalError("no such table: recognition_recognitionjob"))
    assert is_database_unavailable(OperationalError("database is locked"))
    assert not is_database_unavailable(ProgrammingError("syntax"))


def test_the_api_answers_503_json_then_recovers(refused_connection, django_user_model):
    user = django_user_model.objects.create_user("apiuser", password="pw-apiuser-1")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=user, name='t')[1]}")
    assert client.get("/api/v1/jobs/1").status_code == 404  # the database answers

    refused_connection.down()
    response = client.get("/api/v1/jobs/1")  # token authentication needs the database
    assert response.status_code == 503
    assert response["Retry-After"] == "10"
    assert response.json()["error"]["code"] == "database_unavailable"
    assert "Traceback" not in response.content.decode()

    refused_connection.up()
    assert client.get("/api/v1/jobs/1").status_code == 404


def test_a_page_answers_a_503_page_then_recovers(refused_connection, client, django_user_model):
    user = django_user_model.objects.create_user("pageuser", password="pw-pageuser-1")
    client.force_login(user)
    assert client.get("/jobs/").status_code == 200

    refused_connection.down()
    response = client.get("/jobs/")  # the session and the user are read from the database
    assert response.status_code == 503 and response["Retry-After"] == "10"
    assert response["Content-Type"].startswith("text/html")
    assert b"Temporarily unavailable" in response.content

    refused_connection.up()
    assert client.get("/jobs/").status_code == 200


def test_a_posted_upload_while_the_database_is_down_leaves_no_file(
    refused_connection, client, django_user_model, media_root
):
    from tests.conftest import require_file

    user = django_user_model.objects.create_user("apiuser2", password="pw-apiuser-2")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=user, name='t')[1]}")
    refused_connection.down()
    with open(require_file("samples/face_recognition/examples/obama_small.jpg"), "rb") as photo:
        response = api.post("/api/v1/recognize", {"image": photo}, format="multipart")
    assert response.status_code == 503
    assert [p for p in media_root.rglob("*") if p.is_file()] == []


def test_an_error_outside_the_view_is_turned_into_a_503_too(rf):
    """An inner middleware (say the session being saved) fails: Django's own handler makes it a
    500 first; the got_request_exception mark lets the middleware answer 503 instead."""
    from django.core.handlers.exception import convert_exception_to_response

    from facesite.db_unavailable import DatabaseUnavailableMiddleware

    pytest.importorskip("MySQLdb")
    refused = _refused_error()

    def failing_middleware(request):
        raise refused

    inner = convert_exception_to_response(failing_middleware)
    assert inner(rf.get("/jobs/")).status_code == 500  # what Django alone answers
    response = DatabaseUnavailableMiddleware(inner)(rf.get("/api/v1/members"))
    assert response.status_code == 503 and response["Retry-After"] == "10"
    assert b'"database_unavailable"' in response.content
    unrelated = convert_exception_to_response(lambda request: 1 / 0)
    assert DatabaseUnavailableMiddleware(unrelated)(rf.get("/jobs/")).status_code == 500
