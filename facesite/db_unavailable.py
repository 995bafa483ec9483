"""The database is down or went away: answer 503 with Retry-After, never a 500 or a traceback.

``DatabaseUnavailableMiddleware`` (in MIDDLEWARE, near the top) answers, for /api/, the API's
JSON error shape with the stable code ``database_unavailable``, and a short HTML page elsewhere.
It sees the errors of plain views through ``process_exception``; errors raised elsewhere (in
another middleware, e.g. the session being saved) reach Django's 500 handler first, so a
``got_request_exception`` receiver marks the request and the middleware turns that 500 into a
503. DRF views shape their own errors (``facesite.api.errors`` uses ``database_unavailable_body``).
A full disk met by a view (``facesite.disk_full``) is answered here too: 507, nothing stored.

Recovery needs nothing from here: Django opens a new connection per request (or, with
persistent connections, ``CONN_HEALTH_CHECKS`` tests a reused one first) and drops a connection
that raised, so the first request after the database is back succeeds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse

from facesite.disk_full import STORAGE_FULL_CODE, STORAGE_FULL_MESSAGE, is_disk_full

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 10
CODE = "database_unavailable"
MESSAGE = "The database is unavailable for the moment; please try again shortly."

# MySQL/MariaDB client and server codes that mean "no server to talk to" (not a bad query):
# 2002/2003 cannot connect, 2006 gone away, 2013 lost during a query, 2055 lost (system error),
# 1040 too many connections, 1053 shutting down, 1927 connection killed, 4031 idle disconnect.
MYSQL_UNAVAILABLE = frozenset({2002, 2003, 2006, 2013, 2055, 1040, 1053, 1927, 4031})
# SQLite: the file is locked by another writer or cannot be opened.
SQLITE_UNAVAILABLE = ("database is locked", "unable to open database file")
_MARK = "_facesite_unavailable"


def is_database_unavailable(exc: BaseException) -> bool:
    """True if ``exc`` says the database cannot be reached (not that a query was wrong)."""
    if isinstance(exc, InterfaceError):
        return True  # Django raises it for a connection that is already closed or broken
    if not isinstance(exc, OperationalError):
        return False
    args = exc.args
    if args and isinstance(args[0], int):
        return args[0] in MYSQL_UNAVAILABLE
    text = str(exc).lower()
    return any(marker in text for marker in SQLITE_UNAVAILABLE) or ("connection" in text and "refused" in text)


def database_unavailable_body() -> dict:
    return {"error": {"code": CODE, "message": MESSAGE, "details": {"retry_after": RETRY_AFTER_SECONDS}}}


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def database_unavailable_response(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        response: HttpResponse = JsonResponse(database_unavailable_body(), status=503)
    else:
        response = HttpResponse(
            "<!doctype html><html><head><title>Temporarily unavailable</title></head><body>"
            "<h1>Temporarily unavailable</h1><p>The database is unavailable for the moment. "
            "Please try again in a few seconds.</p></body></html>",
            status=503,
            content_type="text/html; charset=utf-8",
        )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def storage_full_response(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"error": {"code": STORAGE_FULL_CODE, "message": STORAGE_FULL_MESSAGE}}, status=507)
    return HttpResponse(
        "<!doctype html><html><head><title>No room to store the upload</title></head><body>"
        f"<h1>No room to store the upload</h1><p>{STORAGE_FULL_MESSAGE}</p></body></html>",
        status=507,
        content_type="text/html; charset=utf-8",
    )


def _classify(exc: BaseException) -> str | None:
    if is_database_unavailable(exc):
        return CODE
    if is_disk_full(exc):
        return STORAGE_FULL_CODE
    return None


@receiver(got_request_exception, dispatch_uid="facesite.db_unavailable.mark")
def _mark_request(sender, request: HttpRequest | None = None, **kwargs) -> None:
    """Django is about to answer 500 for an exception raised outside a view: remember why."""
    import sys

    exc = sys.exc_info()[1]
    if request is not None and exc is not None:
        kind = _classify(exc)
        if kind:
            setattr(request, _MARK, kind)


class DatabaseUnavailableMiddleware:
    """Turns "the database cannot be reached" (and "the disk is full") into a clean answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        kind = getattr(request, _MARK, None)
        if kind and response.status_code == 500:
            return self._answer(request, kind, None)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        kind = _classify(exception)
        return self._answer(request, kind, exception) if kind else None

    @staticmethod
    def _answer(request: HttpRequest, kind: str, exception: Exception | None) -> HttpResponse:
        if kind == CODE:
            logger.warning(
                "Database unavailable during %s %s: %s",
                request.method,
                request.path,
                exception or "(raised outside the view)",
            )
            return database_unavailable_response(request)
        logger.error("Storage full during %s %s: %s", request.method, request.path, exception)
        return storage_full_response(request)
