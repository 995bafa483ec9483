"""gunicorn settings for the web tier: `gunicorn -c facesite/gunicorn.py facesite.wsgi`.

Everything comes from the environment (GUNICORN_*), with defaults for a machine behind a
TLS-terminating proxy. The web process runs the engine itself for the synchronous API calls
(/detect, /embeddings, /verify, member enrolment): each worker process loads the model once
(about 1 GB), so the defaults are few processes with several threads each, and a timeout that
covers the first engine load. Uploaded recognition jobs run on the Celery workers instead.

The app is not preloaded: TensorFlow is never imported before the fork (it is not fork-safe),
and each worker imports Django itself.
"""

import os

from facesite.log import logging_config


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = _int("GUNICORN_WORKERS", 2)
worker_class = "gthread"
threads = _int("GUNICORN_THREADS", 4)
# Seconds a request may run before its worker is restarted: the first engine call in a
# worker loads the model (12-17 s on a small machine), a verify or enrol then takes < 1 s.
timeout = _int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Restart a worker after this many requests (0: never), bounding slow memory growth.
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", max_requests // 10)
# Addresses whose X-Forwarded-* headers are believed (the proxy's); Django's own view of https
# comes from SECURE_PROXY_SSL_HEADER.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# The worker heartbeat file in memory, not on a possibly slow disk.
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR", "/dev/shm" if os.path.isdir("/dev/shm") else None)
# gunicorn >= 25 opens a control socket in $HOME by default; two instances on one host would
# share it. Only with GUNICORN_CONTROL_SOCKET=/path.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True

# gunicorn's own access lines are off by default: facesite.request_id logs one line per request
# with its id, status, duration and user. GUNICORN_ACCESS_LOG=1 adds gunicorn's (same format).
# Every line, gunicorn's error log included, goes through the app's formatter (LOG_FORMAT).
_access = os.environ.get("GUNICORN_ACCESS_LOG", "").strip().lower() in {"1", "true", "yes", "on"}
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
logconfig_dict = logging_config(
    os.environ.get("LOG_FORMAT", "json"), os.environ.get("FACESITE_LOG_LEVEL", "INFO").upper()
)
logconfig_dict["loggers"].update(
    {
        "gunicorn.error": {"handlers": [], "level": loglevel.upper(), "propagate": True},
        # gunicorn logs access lines at INFO: at WARNING they are dropped.
        "gunicorn.access": {"handlers": [], "level": "INFO" if _access else "WARNING", "propagate": True},
    }
)
proc_name = "facesite-web"
