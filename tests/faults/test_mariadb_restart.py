"""MariaDB killed under a running web server: 503s while it is down, 200s once it is back,
without restarting the web server.

A private MariaDB (tests/faults/servers.py) holds the site's database; the site runs as a
subprocess (gunicorn with persistent connections when installed, else runserver). Nothing here
touches the shared server on 3306.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.servers import free_port
from tests.stack import WebServer, create_user, manage, request, stack_env

pytestmark = [pytest.mark.slow]


@pytest.fixture
def site(mariadb_server, tmp_path):
    mariadb_server.create_database("facesite_faults")
    # Persistent connections (as in production): after the restart each worker's connection is
    # dead, and CONN_HEALTH_CHECKS must replace it instead of failing the request.
    env = stack_env(
        database_url=mariadb_server.url("facesite_faults"), media_root=tmp_path / "media", DATABASE_CONN_MAX_AGE="600"
    )
    manage(env, "migrate", "--noinput")
    token, session = create_user(env, "faults")
    server = WebServer(env, free_port(8731), tmp_path / "web.log", workers=1)
    server.wait_ready()
    yield server, token, session
    server.stop()


def test_requests_fail_cleanly_while_the_database_is_down_and_recover(site, mariadb_server):
    server, token, session = site
    api, page = server.base + "/api/v1/jobs/999", server.base + "/jobs/"
    # Warm: the worker holds an open connection (the API answers 404 for a job that does not exist).
    assert request("GET", api, token=token).status == 404
    assert request("GET", page, session=session).status == 200

    mariadb_server.kill()
    for _ in range(3):  # the dead persistent connection first, then refused connections
        reply = request("GET", api, token=token)
        assert reply.status == 503, reply.body[:500]
        assert reply.json()["error"]["code"] == "database_unavailable"
        assert reply.headers["Retry-After"] == "10"
    reply = request("GET", page, session=session)
    assert reply.status == 503 and b"Temporarily unavailable" in reply.body
    assert reply.headers["Content-Type"].startswith("text/html")

    started = time.monotonic()
    mariadb_server.start()
    # The very first request after the restart succeeds: no web server restart, no retry.
    assert request("GET", api, token=token).status == 404
    assert request("GET", page, session=session).status == 200
    assert server.alive()
    assert "Traceback" not in server.text()  # logged as a warning, not as a crash
    print(f"recovered {time.monotonic() - started:.1f} s after the restart began ({server.kind})")
