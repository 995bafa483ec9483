"""Every API error as ``{"error": {"code": "...", "message": "...", "details": {...}?}}``.

The codes are stable (clients branch on them); the message is a sentence for a person. Every
domain error is a ``faceengine.errors.FacesiteError`` with its own code, mapped to a status
here (``STATUS_BY_CODE``), in one branch; DRF's own errors get codes of the same style.
Anything unexpected is logged and answered with a generic 500 in the same shape (never a
traceback). A database that cannot be reached is a 503 ``database_unavailable`` with
Retry-After (facesite.db_unavailable), a full disk a 507 ``storage_full`` (facesite.disk_full):
both say "try again later", neither is the client's fault.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from faceengine.errors import FacesiteError
from facesite import db_unavailable
from facesite.disk_full import STORAGE_FULL_CODE, STORAGE_FULL_MESSAGE, is_disk_full

logger = logging.getLogger(__name__)

# Stable code -> HTTP status, for the engine's and the services' errors.
STATUS_BY_CODE = {
    "invalid_image": status.HTTP_400_BAD_REQUEST,
    "image_too_large": status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    "unsupported_image_type": status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    "no_face": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "several_faces": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "no_template": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "member_not_found": status.HTTP_404_NOT_FOUND,
    "job_not_found": status.HTTP_404_NOT_FOUND,
    "face_not_found": status.HTTP_404_NOT_FOUND,
    "duplicate_external_id": status.HTTP_409_CONFLICT,
    "invalid_input": status.HTTP_400_BAD_REQUEST,
    "model_mismatch": status.HTTP_409_CONFLICT,
    "permission_denied": status.HTTP_403_FORBIDDEN,
    "enrolment_failed": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "invalid_video": status.HTTP_400_BAD_REQUEST,
    "video_too_large": status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    "unsupported_video_type": status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    "video_not_found": status.HTTP_404_NOT_FOUND,
    "cluster_not_found": status.HTTP_404_NOT_FOUND,
    "invalid_zip": status.HTTP_400_BAD_REQUEST,
    "zip_too_large": status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    "model_error": status.HTTP_503_SERVICE_UNAVAILABLE,
    "storage_full": status.HTTP_507_INSUFFICIENT_STORAGE,
    "database_unavailable": status.HTTP_503_SERVICE_UNAVAILABLE,
}


def status_for_code(code: str, default: int = status.HTTP_400_BAD_REQUEST) -> int:
    """The HTTP status of a stable error code, for the API and the pages' JSON answers alike."""
    return STATUS_BY_CODE.get(code, default)


# DRF's exceptions -> our codes (DRF's default codes are fine words, but not all stable).
DRF_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
    exceptions.ParseError: "malformed_request",
    exceptions.ValidationError: "invalid_request",
}


class ApiError(FacesiteError):
    """An error the API raises itself, with a stable code and, where the code does not say it,
    a status."""

    def __init__(
        self, code: str, message: str, *, status_code: int | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, code=code, details=details)
        self.http_status = status_code


class RequestTooLarge(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__("request_too_large", message, status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def _drf_message(detail) -> str:
    if isinstance(detail, (list, tuple)) and detail:
        return _drf_message(detail[0])
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        text = _drf_message(value)
        return text if key in ("non_field_errors", "detail") else f"{key}: {text}"
    return str(detail)


def exception_handler(exc, context):
    headers: dict[str, str] = {}
    if isinstance(exc, FacesiteError):
        # Every domain error: the engine's, the services', the API's own.
        code, message, details = exc.api_code(), exc.message, exc.details
        status_code = exc.http_status or status_for_code(code)
    elif isinstance(exc, RequestDataTooBig):
        code, message, details = "request_too_large", "The request is over the size limit.", {}
        status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    elif isinstance(exc, TooManyFieldsSent):
        code, message, details, status_code = "malformed_request", "Too many fields.", {}, 400
    elif db_unavailable.is_database_unavailable(exc):
        logger.warning("Database unavailable in %s: %s", context.get("view").__class__.__name__, exc)
        body = db_unavailable.database_unavailable_body()
        return Response(
            body,
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(db_unavailable.RETRY_AFTER_SECONDS)},
        )
    elif is_disk_full(exc):
        logger.error("Storage full in %s: %s", context.get("view").__class__.__name__, exc)
        code, message, details, status_code = STORAGE_FULL_CODE, STORAGE_FULL_MESSAGE, {}, 507
    elif isinstance(exc, (Http404, DjangoPermissionDenied, exceptions.APIException)):
        response = drf_exception_handler(exc, context)  # converts Http404 etc., sets auth headers
        if response is None:
            return None
        drf_exc = exc
        if isinstance(exc, Http404):
            drf_exc = exceptions.NotFound()
        elif isinstance(exc, DjangoPermissionDenied):
            drf_exc = exceptions.PermissionDenied()
        code = next((c for cls, c in DRF_CODES.items() if isinstance(drf_exc, cls)), None)
        code = code or (drf_exc.default_code if isinstance(drf_exc, exceptions.APIException) else "error")
        details = {}
        if isinstance(drf_exc, exceptions.ValidationError):
            details = {"fields": drf_exc.detail} if isinstance(drf_exc.detail, dict) else {"errors": drf_exc.detail}
            message = "The request is not valid: " + _drf_message(drf_exc.detail)
        elif isinstance(drf_exc, exceptions.Throttled):
            message = f"Too many requests; try again in {int(drf_exc.wait or 1)} second(s)."
            details = {"retry_after": int(drf_exc.wait or 1)}
        else:
            message = _drf_message(getattr(drf_exc, "detail", str(drf_exc)))
        response.data = error_body(code, message, details)
        return response
    else:
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        return Response(
            error_body("internal_error", "Something went wrong on our side; it has been logged."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    return Response(error_body(code, message, details), status=status_code, headers=headers)
