"""Liveness (GET /healthz) and readiness (GET /readyz) for load balancers and orchestrators.

/healthz answers as long as the process can serve a request: no database, nothing slow, so a
database outage does not get every web process restarted. /readyz checks what a request needs:
a database query, the broker (unless tasks run eagerly in-process) and the model file, and says
per check ok or not with its latency; 200 when all pass, else 503. It does not load TensorFlow
into the web process just to answer, unless FACESITE_READINESS_LOAD_ENGINE is set (then the
first probe warms the engine and the first real request does not pay for it).

No secrets in the answers: a failure is named by its exception type; the details go to the log.
Anonymous and unthrottled (plain Django views, outside DRF's rate limits).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)

Check = Callable[[], dict[str, Any]]


def check_database() -> dict[str, Any]:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {}


def check_broker() -> dict[str, Any]:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        # The embedded default: tasks run inside the request, there is no broker to reach.
        return {"skipped": "eager"}
    from kombu import Connection

    timeout = settings.FACESITE_READINESS_TIMEOUT
    options = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=timeout, transport_options=options) as conn:
        conn.ensure_connection(max_retries=0, timeout=timeout)
        client = getattr(conn.default_channel, "client", None)
        if client is not None and hasattr(client, "ping"):  # Redis: a round trip, not just an open socket
            client.ping()
    return {}


def check_model() -> dict[str, Any]:
    from facesite import engine as runtime

    spec = runtime.active_model_spec()
    details: dict[str, Any] = {"model": spec.name, "backend": spec.backend}
    loaded = runtime.get_recognizer.cache_info().currsize > 0
    if not loaded:
        path = settings.FACESITE_MODEL_DIR / spec.filename
        if not path.exists() or (path.is_file() and path.stat().st_size == 0):
            logger.warning("Readiness: %s is missing; run manage.py fetch_models.", path)
            return {**details, "ok": False, "error": "model file missing: run manage.py fetch_models"}
        if settings.FACESITE_READINESS_LOAD_ENGINE:
            runtime.get_recognizer()
            loaded = True
    return {**details, "loaded": loaded}


CHECKS: dict[str, Check] = {"database": check_database, "broker": check_broker, "model": check_model}


def _run(name: str, check: Check) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = {"ok": True, **check()}
    except Exception as exc:  # noqa: BLE001 - a probe reports every failure; it must not raise one
        logger.warning("Readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
        result = {"ok": False, "error": type(exc).__name__}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def readiness() -> tuple[bool, dict[str, dict[str, Any]]]:
    results = {name: _run(name, check) for name, check in CHECKS.items()}
    return all(result["ok"] for result in results.values()), results


@login_not_required
@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@login_not_required
@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    ready, checks = readiness()
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)
