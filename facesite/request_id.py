"""Every request gets an id: the caller's X-Request-ID when it is sane, else a new one.

It is put on ``request.request_id``, into the logging context (so every line logged while the
request runs carries it) and on the response's X-Request-ID header, and one line is logged per
request with its status and duration. The middleware is first in MIDDLEWARE so that even the
security redirect and static files answer with an id.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse

from .log import request_id_var, request_var

HEADER = "X-Request-ID"
# What a proxy or a caller may hand us: uuids, hex, base64-ish trace ids. Anything else (too
# long, spaces, control characters that could forge log lines) is replaced by our own.
_SANE = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")
# Load balancer probes would drown the log; they are logged only when they fail.
_QUIET_PATHS = frozenset({"/healthz", "/readyz"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

logger = logging.getLogger("facesite.request")


def _printable(path: str) -> str:
    """A decoded path may hold a newline (%0A): escape it so it cannot forge a plain log line."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", path)


def incoming_or_new(value: str | None) -> str:
    if value and _SANE.fullmatch(value):
        return value
    return uuid.uuid4().hex


def clear_request_context(**kwargs: object) -> None:
    """At request_finished (the response closed, after the server's own access line), so that
    Django's "Not Found" warnings, logged after the middleware returned, still carry the id."""
    request_id_var.set(None)
    request_var.set(None)


request_finished.connect(clear_request_context, dispatch_uid="facesite.request_id.clear")


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = incoming_or_new(request.headers.get(HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        # Set, not reset on the way out: cleared at request_finished (above); a thread's next
        # request sets its own before anything is logged.
        request_id_var.set(request_id)
        request_var.set(request)
        started = time.perf_counter()
        response = self.get_response(request)
        response[HEADER] = request_id
        if response.status_code >= 400 or request.path not in _QUIET_PATHS:
            # The path without the query string: query strings may carry secrets.
            path = _printable(request.path)
            logger.info(
                "%s %s %s",
                request.method,
                path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
        return response
