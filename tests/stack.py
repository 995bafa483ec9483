"""A production-like stack in subprocesses: the web server, Celery workers, manage.py commands,
and a small HTTP client (stdlib only). Used by the worker and fault tests and by
benchmarks/faults.py and benchmarks/load.py, so a scripted check and its test run the very same
processes.

The web server is gunicorn when installed next to this Python (sync workers, persistent
database connections, as in production), else ``manage.py runserver --noreload``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stack_env(
    *, database_url: str, broker_url: str = "", media_root: Path, settings: str = "facesite.settings.test", **extra: str
) -> dict[str, str]:
    """The environment of every process of a stack (secrets for prod settings come from the caller)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "FACESITE_MEDIA_ROOT": str(media_root),
        "FACESITE_LOG_LEVEL": "INFO",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    if not broker_url:
        env.pop("CELERY_BROKER_URL")
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    """Run ``manage.py`` with ``args``; its stdout, or RuntimeError with its output."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


_USER_SCRIPT = """
from django.contrib.auth import get_user_model
from django.test import Client
from accounts.services import token_create
user, _ = get_user_model().objects.get_or_create(username={username!r})
user.set_password("pw-" + {username!r} + "-1"); user.save()
client = Client(); client.force_login(user)
print("TOKEN", token_create(user=user, name="stack")[1])
print("SESSION", client.cookies["sessionid"].value)
"""


def create_user(env: dict[str, str], username: str) -> tuple[str, str]:
    """A user in the stack's database: (an API token, a session id for the pages)."""
    out = manage(env, "shell", "-c", _USER_SCRIPT.format(username=username))
    values = dict(line.split(" ", 1) for line in out.splitlines() if line.startswith(("TOKEN ", "SESSION ")))
    return values["TOKEN"].strip(), values["SESSION"].strip()


class _Process:
    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.handle = open(log, "ab")  # noqa: SIM115 - the subprocess writes to it until stop() closes it
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.handle, stderr=subprocess.STDOUT, start_new_session=True
        )  # own group: signals reach its children

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, timeout: float = 30) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.handle.close()

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def gunicorn_path() -> Path | None:
    path = Path(sys.executable).parent / "gunicorn"
    return path if path.exists() else None


class WebServer(_Process):
    """The site on 127.0.0.1:``port``; ``kind`` says which server it is."""

    def __init__(self, env: dict[str, str], port: int, log: Path, *, workers: int = 2, threads: int = 1) -> None:
        self.port, self.base = port, f"http://127.0.0.1:{port}"
        gunicorn = gunicorn_path()
        if gunicorn:
            self.kind = (
                f"gunicorn ({workers} sync workers)" if threads == 1 else f"gunicorn ({workers}x{threads} gthread)"
            )
            command = [
                str(gunicorn),
                "facesite.wsgi:application",
                "-b",
                f"127.0.0.1:{port}",
                "-w",
                str(workers),
                "--threads",
                str(threads),
                "--timeout",
                "120",
                "--access-logfile",
                "-",
            ]
        else:
            self.kind = "manage.py runserver --noreload (gunicorn not installed)"
            command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
        super().__init__(command, env, log)

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"the web server exited:\n{self.text()[-3000:]}")
            try:
                urllib.request.urlopen(self.base + "/accounts/login/", timeout=2).read()
                return
            except urllib.error.HTTPError:
                return  # it answers
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"the web server did not answer within {timeout} s:\n{self.text()[-3000:]}")


class CeleryWorker(_Process):
    def __init__(self, env: dict[str, str], log: Path, *, concurrency: int = 1, beat: bool = False) -> None:
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "facesite",
            "worker",
            "-Q",
            "recognition",
            "-c",
            str(concurrency),
            "--pool",
            "prefork",
            "-n",
            f"stack-{uuid.uuid4().hex[:8]}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "INFO",
        ]
        if beat:
            command += ["-B", "-s", str(log.with_suffix(".beat-schedule"))]
        super().__init__(command, env, log)

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while "ready." not in self.text():
            if not self.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{self.text()[-3000:]}")
            time.sleep(0.2)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def request(
    method: str,
    url: str,
    *,
    token: str | None = None,
    session: str | None = None,
    files: dict[str, tuple[str, bytes]] | None = None,
    timeout: float = 30,
) -> Reply:
    """One HTTP request; any status is a Reply (urllib raises for 4xx/5xx; this does not)."""
    headers = {"Accept": "application/json"} if "/api/" in url else {}
    data = None
    if token:
        headers["Authorization"] = f"Token {token}"
    if session:
        headers["Cookie"] = f"sessionid={session}"
    if files:
        boundary = uuid.uuid4().hex
        parts = []
        for field, (filename, content) in files.items():
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
                f"Content-Type: application/octet-stream\r\n\r\n".encode()
                + content
                + b"\r\n"
            )
        data = b"".join(parts) + f"--{boundary}--\r\n".encode()
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, dict(exc.headers), exc.read())
