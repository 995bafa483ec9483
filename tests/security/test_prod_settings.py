"""Production settings take the secret key and the database (with its password) only from the
environment and refuse to start without them. Run in a subprocess, as a server would start."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROD_ENV = {
    "DJANGO_SETTINGS_MODULE": "facesite.settings.prod",
    "DJANGO_SECRET_KEY": "k" * 50 + "-from-the-environment",
    "DATABASE_URL": "mysql://facesite:s3cret-from-env@db.example:3306/facesite",
    "DJANGO_ALLOWED_HOSTS": "facesite.example.org",
    "CELERY_BROKER_URL": "redis://redis.example:6379/0",
}
SHOW = ("import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECRET_KEY); print(s.DATABASES['default']['PASSWORD'])")


def start(env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in PROD_ENV}
    return subprocess.run([sys.executable, "-c", SHOW], env={**clean, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_prod_reads_the_key_and_the_password_from_the_environment():
    out = start(PROD_ENV)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [PROD_ENV["DJANGO_SECRET_KEY"], "s3cret-from-env"]


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DATABASE_URL"])
def test_prod_refuses_to_start_without(missing):
    out = start({k: v for k, v in PROD_ENV.items() if k != missing})
    assert out.returncode != 0
    assert "ImproperlyConfigured" in out.stderr and missing in out.stderr
    assert start({**PROD_ENV, missing: ""}).returncode != 0  # set but empty is no better


def test_no_shared_settings_file_sets_a_key_or_password_literally():
    """base.py and prod.py assign no SECRET_KEY and no DATABASES password from a string literal
    (dev.py and test.py may carry throwaway keys: neither is production)."""
    for name in ("base.py", "prod.py"):
        tree = ast.parse((ROOT / "facesite" / "settings" / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                targets = [ast.unparse(t) for t in node.targets]
                if any(t == "SECRET_KEY" or "PASSWORD" in t for t in targets):
                    assert not isinstance(node.value, ast.Constant), (name, targets)
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values):
                    if isinstance(key, ast.Constant) and key.value in ("PASSWORD", "SECRET_KEY"):
                        assert not isinstance(value, ast.Constant), (name, key.value)
