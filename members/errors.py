"""Errors the member services raise: ``FacesiteError``s (``faceengine.errors``) with stable codes
that the API maps to statuses (``facesite.api.errors``)."""

from __future__ import annotations

from typing import Any

from faceengine.errors import FacesiteError


class MemberError(FacesiteError):
    """Base class of the member services' errors."""

    code = "member_error"


class MemberNotFound(MemberError):
    code = "member_not_found"


class NoTemplate(MemberError):
    """The member has no enrolled face for the model asked about."""

    code = "no_template"


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

    def __init__(self, message: str, *, outcomes: list[Any] | None = None) -> None:
        self.outcomes = list(outcomes or [])
        super().__init__(message, details={"photos": [o.as_dict() for o in self.outcomes]})

    def api_code(self) -> str:
        """No photo usable: if every photo failed for the same image reason (all too large, all
        of an unsupported type) that reason is the answer; otherwise the error's own code."""
        codes = {o.code for o in self.outcomes if o.code}
        if self.code == InvalidImage.code and len(codes) == 1:
            return codes.pop()
        return self.code


class NoFace(EnrolmentFailed):
    """The photos were readable but no face was found in any of them."""

    code = "no_face"


class InvalidImage(EnrolmentFailed):
    """None of the photos could be read as an image (the engine's code is in each outcome)."""

    code = "invalid_image"
