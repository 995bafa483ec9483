"""facesite/gunicorn.py: its values come from the environment, and gunicorn really serves the
app with it (JSON lines, request ids, health)."""

from __future__ import annotations

import json
import os
import runpy
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import ROOT

CONFIG = ROOT / "facesite" / "gunicorn.py"


def _config(monkeypatch, **env: str) -> dict:
    for key in [k for k in os.environ if k.startswith("GUNICORN_")] + ["LOG_FORMAT"]:
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return runpy.run_path(str(CONFIG))


def test_defaults(monkeypatch):
    config = _config(monkeypatch)
    assert (config["bind"], config["workers"], config["threads"], config["worker_class"]) == (
        "0.0.0.0:8000",
        2,
        4,
        "gthread",
    )
    assert config["timeout"] == 60 and config["max_requests"] == 0
    assert config["control_socket_disable"] is True and "control_socket" not in config
    assert config["logconfig_dict"]["formatters"]["default"]["()"] == "facesite.log.JsonFormatter"
    assert config["logconfig_dict"]["loggers"]["gunicorn.access"]["level"] == "WARNING"
    assert "preload_app" not in config  # TensorFlow must never be imported before the fork


def test_values_from_the_environment(monkeypatch):
    config = _config(
        monkeypatch,
        GUNICORN_BIND="127.0.0.1:9000",
        GUNICORN_WORKERS="5",
        GUNICORN_THREADS="8",
        GUNICORN_TIMEOUT="120",
        GUNICORN_MAX_REQUESTS="1000",
        GUNICORN_ACCESS_LOG="1",
        GUNICORN_CONTROL_SOCKET="/run/facesite/gunicorn.ctl",
        LOG_FORMAT="plain",
    )
    assert (config["bind"], config["workers"], config["threads"], config["timeout"]) == ("127.0.0.1:9000", 5, 8, 120)
    assert (config["max_requests"], config["max_requests_jitter"]) == (1000, 100)
    assert config["control_socket"] == "/run/facesite/gunicorn.ctl" and "control_socket_disable" not in config
    assert config["logconfig_dict"]["formatters"]["default"]["()"] == "facesite.log.PlainFormatter"
    assert config["logconfig_dict"]["loggers"]["gunicorn.access"]["level"] == "INFO"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_gunicorn_serves_the_app_with_this_config(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "facesite.settings.test",
        "LOG_FORMAT": "json",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "2",
    }
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as handle:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(CONFIG), "facesite.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, log.read_text(errors="replace")
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/healthz", headers={"X-Request-ID": "probe-1"}
                )
                with urllib.request.urlopen(request, timeout=5) as response:
                    status, headers, body = response.status, response.headers, response.read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("gunicorn did not answer:\n" + log.read_text(errors="replace"))
                time.sleep(0.5)
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/no-such-page", timeout=5)
        except urllib.error.HTTPError as error:
            assert error.code == 404 and error.headers["X-Request-ID"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)

    assert status == 200 and json.loads(body) == {"status": "ok"}
    assert headers["X-Request-ID"] == "probe-1"
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line gunicorn and the app wrote is JSON
    assert any(e["logger"] == "gunicorn.error" and e["message"].startswith("Booting worker") for e in entries)
    not_found = [e for e in entries if e["logger"] == "facesite.request" and e["path"] == "/no-such-page"]
    assert len(not_found) == 1 and not_found[0]["status"] == 404 and not_found[0]["request_id"]
    assert not [e for e in entries if e["logger"] == "gunicorn.access"]  # one access line, ours
