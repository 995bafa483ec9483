"""Running manage.py and small scripts in a fresh process with a production environment.

Settings modules are read once per process, so anything about facesite.settings.prod is tested
in a subprocess with exactly the environment an operator would set.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

from tests.conftest import ROOT

# Variables of the test run that must not leak into a "production" process.
_DROPPED = (
    "DJANGO_SETTINGS_MODULE",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_TASK_ALWAYS_EAGER",
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "LOG_FORMAT",
    "DJANGO_SECURE_SSL_REDIRECT",
    "DJANGO_SECURE_COOKIES",
    "DJANGO_STATIC_ROOT",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
)


def prod_env(**overrides: str | None) -> dict[str, str]:
    """A realistic production environment (nothing in it is connected to by `check`);
    an override of None removes the variable."""
    env = {key: value for key, value in os.environ.items() if key not in _DROPPED}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "facesite.settings.prod",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "facesite.example",
            "DATABASE_URL": "mysql://facesite:s3cret-pw@db.example:3306/facesite",
            "CELERY_BROKER_URL": "redis://redis.example:6379/0",
        }
    )
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def manage(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return run([sys.executable, "manage.py", *args], env, timeout)


def python(script: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return run([sys.executable, "-c", script], env, timeout)
