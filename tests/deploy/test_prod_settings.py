"""facesite.settings.prod: `check --deploy` clean, the secret key and the database password
only from the environment, refuses to start without what it needs (set but empty is no better),
and serves collected static files through whitenoise. Each test is a fresh process."""

from __future__ import annotations

import ast
import json

import pytest

from tests.conftest import ROOT

from .helpers import manage, prod_env, python

pytestmark = pytest.mark.slow  # a few seconds per subprocess


def test_check_deploy_is_clean_with_a_realistic_environment():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=prod_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr


def test_check_deploy_flags_the_settings_switched_off():
    """The same check does see insecure settings: the switches are real and the test above
    would fail if prod lost them."""
    env = prod_env(DJANGO_SECURE_SSL_REDIRECT="0", DJANGO_SECURE_COOKIES="0", DJANGO_SECURE_HSTS_SECONDS="0")
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    for code in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert code in result.stderr, result.stderr


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_ALLOWED_HOSTS"])
def test_prod_refuses_to_start_without(missing):
    result = manage("check", env=prod_env(**{missing: None}))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{missing} is required in production" in result.stderr


@pytest.mark.parametrize("variable, value", [("DJANGO_SECRET_KEY", "  "), ("DATABASE_URL", "")])
def test_prod_refuses_an_empty_value(variable, value):
    result = manage("check", env=prod_env(**{variable: value}))
    assert result.returncode != 0
    assert f"{variable} is required in production" in result.stderr


def test_prod_reads_the_key_and_the_password_from_the_environment():
    env = prod_env(
        DJANGO_SECRET_KEY="k" * 50 + "-from-the-environment",
        DATABASE_URL="mysql://facesite:s3cret-from-env@db.example:3306/facesite",
    )
    result = python(
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECRET_KEY); print(s.DATABASES['default']['PASSWORD'])",
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [env["DJANGO_SECRET_KEY"], "s3cret-from-env"]


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
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value in ("PASSWORD", "SECRET_KEY"):
                        assert not isinstance(value, ast.Constant), (name, key.value)


def test_prod_refuses_sqlite():
    result = manage("check", env=prod_env(DATABASE_URL="sqlite:////tmp/facesite.sqlite3"))
    assert result.returncode != 0
    assert "DATABASE_URL names SQLite" in result.stderr


SETTINGS_SCRIPT = """
import json, django
django.setup()
from django.conf import settings as s
db = s.DATABASES["default"]
print(json.dumps({
    "debug": s.DEBUG, "eager": s.CELERY_TASK_ALWAYS_EAGER, "broker": s.CELERY_BROKER_URL,
    "engine": db["ENGINE"], "conn_max_age": db["CONN_MAX_AGE"], "health_checks": db["CONN_HEALTH_CHECKS"],
    "connect_timeout": db["OPTIONS"].get("connect_timeout"),
    "staticfiles": s.STORAGES["staticfiles"]["BACKEND"],
    "middleware": s.MIDDLEWARE[:3],
    "formatter": s.LOGGING["formatters"]["default"]["()"],
    "ssl_redirect": s.SECURE_SSL_REDIRECT, "proxy_header": s.SECURE_PROXY_SSL_HEADER,
    "hsts": s.SECURE_HSTS_SECONDS,
}))
"""


def test_prod_values():
    # An operator's CELERY_TASK_ALWAYS_EAGER=1 must not make production run jobs in the web process.
    result = python(SETTINGS_SCRIPT, prod_env(CELERY_TASK_ALWAYS_EAGER="1"))
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["debug"] is False
    assert values["eager"] is False
    assert values["broker"] == "redis://redis.example:6379/0"
    assert values["engine"] == "django.db.backends.mysql"
    assert values["conn_max_age"] == 60 and values["health_checks"] is True
    assert values["connect_timeout"] == 5
    assert values["staticfiles"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    assert values["middleware"] == [
        "facesite.request_id.RequestIdMiddleware",
        "django.middleware.security.SecurityMiddleware",
        "whitenoise.middleware.WhiteNoiseMiddleware",
    ]
    assert values["formatter"] == "facesite.log.JsonFormatter"
    assert values["ssl_redirect"] is True and values["proxy_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["hsts"] == 31536000

    plain = python(
        SETTINGS_SCRIPT, prod_env(LOG_FORMAT="plain", DATABASE_CONN_MAX_AGE="0", DJANGO_SECURE_SSL_REDIRECT="0")
    )
    assert plain.returncode == 0, plain.stderr
    values = json.loads(plain.stdout.strip().splitlines()[-1])
    assert values["formatter"] == "facesite.log.PlainFormatter"
    assert values["conn_max_age"] == 0 and values["ssl_redirect"] is False


def test_bad_log_format_is_refused():
    result = manage("check", env=prod_env(LOG_FORMAT="xml"))
    assert result.returncode != 0
    assert "LOG_FORMAT must be one of" in result.stderr


STATIC_SCRIPT = """
import json, django
django.setup()
from django.core.management import call_command
from django.contrib.staticfiles.storage import staticfiles_storage
from django.test import Client
call_command("collectstatic", "--noinput", verbosity=0)
hashed = staticfiles_storage.url("admin/css/base.css")
client = Client(HTTP_HOST="facesite.example")
out = {"hashed": hashed}
response = client.get(hashed, secure=True, HTTP_ACCEPT_ENCODING="gzip")
body = b"".join(response.streaming_content) if response.streaming else response.content
out["hashed_response"] = {"status": response.status_code, "cache": response.get("Cache-Control"),
                          "encoding": response.get("Content-Encoding"), "type": response.get("Content-Type"),
                          "request_id": response.get("X-Request-ID"), "size": len(body)}
response = client.get("/static/admin/css/base.css", secure=False)
out["plain_http"] = {"status": response.status_code, "location": response.get("Location")}
response = client.get("/healthz", secure=False)
out["healthz_http"] = response.status_code
print(json.dumps(out))
"""


def test_collected_static_files_are_served_by_whitenoise(tmp_path):
    """collectstatic with the manifest storage, then the hashed file from the web process:
    compressed, cached for ever; plain http is redirected, except the health probes."""
    result = python(STATIC_SCRIPT, prod_env(DJANGO_STATIC_ROOT=str(tmp_path / "static")), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["hashed"].startswith("/static/admin/css/base.") and out["hashed"] != "/static/admin/css/base.css"
    served = out["hashed_response"]
    assert served["status"] == 200
    assert "immutable" in served["cache"] and "max-age=315360000" in served["cache"]
    assert served["encoding"] == "gzip"
    assert served["type"].startswith("text/css")
    assert served["request_id"] and served["size"] > 0
    assert (tmp_path / "static" / "staticfiles.json").is_file()
    assert out["plain_http"] == {"status": 301, "location": "https://facesite.example/static/admin/css/base.css"}
    assert out["healthz_http"] == 200
