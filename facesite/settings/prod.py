"""Production: secrets only from the environment, DEBUG off, a server database and a broker.

Start-up fails with ImproperlyConfigured naming the variable when something required is missing;
nothing here has a default password or key. `manage.py check --deploy` is clean with the
documented environment (tests/deploy/test_prod_settings.py runs it).
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from facesite.log import logging_config

from .base import *  # noqa: F403
from .base import DATABASES, STATIC_ROOT  # the same objects, named for the linters
from .env import env_bool, env_int, env_list, env_str


def _required(name: str, example: str) -> str:
    value = env_str(name, "")
    if not value.strip():
        raise ImproperlyConfigured(f"{name} is required in production (facesite.settings.prod), e.g. {example}.")
    return value


DEBUG = False
SECRET_KEY = _required(
    "DJANGO_SECRET_KEY", "the output of `python -c 'import secrets; print(secrets.token_urlsafe(50))'`"
)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", [])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS is required in production, e.g. facesite.example.org "
        "(comma-separated; the host names clients and health probes use)."
    )
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# --- Database: one server database shared by the web and every worker ------------------------
# base.py parsed DATABASE_URL; here it must exist and name a server (SQLite cannot be shared by
# workers on other machines). Connections persist for CONN_MAX_AGE s, tested before reuse.
_required("DATABASE_URL", "mysql://facesite:PASSWORD@db.example:3306/facesite")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    raise ImproperlyConfigured(
        "DATABASE_URL names SQLite: production needs MySQL/MariaDB shared by the web "
        "and the workers, e.g. mysql://facesite:PASSWORD@db.example:3306/facesite."
    )
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    # A database host that is down must fail a request (and /readyz) in seconds, not minutes.
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 5))

# --- Celery: a real broker; never eager (an upload must not run the engine in the web process)
CELERY_BROKER_URL = _required("CELERY_BROKER_URL", "redis://redis.example:6379/0")
CELERY_TASK_ALWAYS_EAGER = False

# --- HTTPS. Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips it from
# clients), keep the defaults. DJANGO_SECURE_SSL_REDIRECT=0 only where the proxy itself redirects
# http to https (or for a local trial over plain http, with DJANGO_SECURE_COOKIES=0 too).
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DJANGO_TRUST_X_FORWARDED_PROTO", True) else None
)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
# Probes talk plain http to gunicorn directly: no redirect for them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# --- Static files: collected into STATIC_ROOT (`manage.py collectstatic`) and served by
# whitenoise from the web process, compressed, with hashed names cached for ever.
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(STATIC_ROOT)))
STORAGES = {
    "default": {"BACKEND": "facesite.disk_full.DiskFullSafeStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Logs: JSON lines for the log collector (LOG_FORMAT=plain to read them by eye)
LOG_FORMAT = env_str("LOG_FORMAT", "json")
LOGGING = logging_config(LOG_FORMAT, env_str("FACESITE_LOG_LEVEL", "INFO"))
