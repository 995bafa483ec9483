"""Pages and the admin refuse a request from its declared length, before anything reads it.

Django reads a multipart body to the end (into temporary files) before a view or the CSRF
check runs, so without this a logged-in user could send a body of any size and fill the disk
before the per-photo limit is ever applied. The API does the same check in its base view
(``ApiView``, with its own limits); this middleware covers everything else. It sits before the
CSRF middleware, which is the first to read ``request.POST``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

CODE = "request_too_large"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def declared_length(request: HttpRequest) -> int:
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


def _wants_json(request: HttpRequest) -> bool:
    return request.headers.get("x-requested-with") == "XMLHttpRequest" or "application/json" in request.headers.get(
        "accept", ""
    )


class PageRequestSizeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in _BODY_METHODS and not request.path.startswith("/api/"):
            limit = settings.FACESITE_PAGE_MAX_REQUEST_BYTES
            length = declared_length(request)
            if length > limit:
                return self._refuse(request, length, limit)
        return self.get_response(request)

    @staticmethod
    def _refuse(request: HttpRequest, length: int, limit: int) -> HttpResponse:
        message = f"The upload is {length} bytes; the limit for one request is {limit} bytes."
        if _wants_json(request):
            response: HttpResponse = JsonResponse({"error": {"code": CODE, "message": message}}, status=413)
        else:
            response = HttpResponse(
                f"<!doctype html><title>Upload too large</title><h1>Upload too large</h1>"
                f"<p>{message} Send fewer photos at a time.</p>",
                status=413,
            )
        # The body is never read: the connection cannot be reused for another request.
        response["Connection"] = "close"
        return response
