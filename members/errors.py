"""Errors the member services raise; each has a stable ``code`` the REST API maps to a status.

Suggested mapping: ``member_not_found`` -> 404; ``duplicate_external_id`` -> 409;
``no_face``, ``invalid_image`` (and the engine's image codes), ``invalid_input`` -> 422.
"""
from __future__ import annotations

from typing import Any


class MemberError(Exception):
    """Base class. ``code`` is stable and safe to show to API clients; ``details`` is JSON-able."""

    code = "member_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **({"details": self.details} if self.details else {})}


class MemberNotFound(MemberError):
    code = "member_not_found"


class DuplicateExternalId(MemberError):
    code = "duplicate_external_id"


class PermissionRefused(MemberError):
    """The acting user lacks the permission the operation needs (checked in the service too, so
    every front door, the API, a worker and the folder command, enforces the same rule)."""

    code = "permission_denied"


class InvalidInput(MemberError):
    """An argument a caller can fix (an unknown mode, an empty name, a folder that is not one)."""

    code = "invalid_input"


class EnrolmentFailed(MemberError):
    """No photo of a request gave a usable face; ``outcomes`` says what went wrong with each."""

    code = "enrolment_failed"

    def __init__(self, message: str, *, outcomes: list | None = None) -> None:
        self.outcomes = list(outcomes or [])
        super().__init__(message, details={"photos": [o.as_dict() for o in self.outcomes]})


class NoFace(EnrolmentFailed):
    """The photos were readable but no face was found in any of them."""

    code = "no_face"


class InvalidImage(EnrolmentFailed):
    """None of the photos could be read as an image (the engine's code is in each outcome)."""

    code = "invalid_image"
