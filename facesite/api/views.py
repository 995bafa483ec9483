"""The base of every /api/v1/ view, and the helpers of their OpenAPI descriptions."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.views import APIView

from .errors import RequestTooLarge, error_body
from .fields import ErrorResponse, json_variant

MAX_ID = 2**63 - 1

_ERROR_TEXT = {
    400: "Bad request: unreadable image, invalid fields (code says which).",
    401: "No credentials, or a token that is not valid.",
    403: "Authenticated, but without the permission.",
    404: "Not found (member_not_found, job_not_found, face_not_found).",
    409: "Conflict (duplicate_external_id, model_mismatch).",
    413: "Too large (image_too_large, request_too_large).",
    415: "The file is not an image of a supported type (unsupported_image_type).",
    422: "No usable face (no_face), or nothing to compare with (no_template).",
    429: "Rate limited (rate_limited); see Retry-After.",
}

IMAGE_ERRORS = (400, 413, 415)


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """OpenAPI responses for error statuses, all of the ErrorResponse shape."""
    wanted = sorted({400, 401, 403, 429, *codes})
    return {code: OpenApiResponse(ErrorResponse, description=_ERROR_TEXT.get(code, "Error.")) for code in wanted}


def image_request(
    serializer_class: type[serializers.Serializer], json_serializer: type[serializers.Serializer] | None = None
) -> dict[str, Any]:
    """A request body that is multipart (files) or JSON (base64 strings)."""
    return {
        "multipart/form-data": serializer_class,
        "application/json": json_serializer or json_variant(serializer_class),
    }


def valid_id(value: Any) -> int | None:
    """A path id usable in a query (big numbers would overflow the database's integer)."""
    try:
        value = int(value)
    except (TypeError, ValueError):
        return None
    return value if 0 < value <= MAX_ID else None


class ApiView(APIView):
    """The base of every /api/v1/ view: the request size is checked from its Content-Length
    before anything reads the body (or authentication parses a form for the CSRF check)."""

    max_request_setting = "FACESITE_API_MAX_REQUEST_BYTES"

    @property
    def uses_engine(self) -> bool:
        """True: the stricter "engine" rate applies (EngineRateThrottle). Views override it with
        a class attribute or, when it depends on the method, a property of their own."""
        return False

    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        if request.method in ("POST", "PUT", "PATCH"):
            limit = getattr(settings, self.max_request_setting)
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                raise RequestTooLarge(f"The request is {length} bytes; the limit is {limit}.")
        super().initial(request, *args, **kwargs)


@csrf_exempt  # it changes nothing; without this a POST would get the CSRF middleware's HTML 403
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any /api/ address that matches no endpoint: the JSON error shape, not Django's page."""
    return JsonResponse(error_body("not_found", f"No endpoint at {request.path}."), status=404)
