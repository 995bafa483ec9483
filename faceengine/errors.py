"""The project's one error protocol, and the errors the engine raises.

Every domain error of facesite, the engine's and the Django apps' alike, subclasses
``FacesiteError``: a stable ``code`` (clients branch on it), a ``message`` (a sentence for a
person) and JSON-able ``details``. The API maps the code to an HTTP status in one place
(``facesite.api.errors``). This module imports nothing but the standard library, so the engine
stays free of Django.
"""

from __future__ import annotations

from typing import Any


class FacesiteError(Exception):
    """Base class of every error facesite raises on purpose."""

    code = "error"
    # An HTTP status that this error always means, where the code alone does not say it.
    http_status: int | None = None

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details or {}

    def api_code(self) -> str:
        """The code the API answers with (an error may refine its own from its details)."""
        return self.code

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            data["details"] = self.details
        return data


class EngineError(FacesiteError):
    """Base class of the engine's errors."""

    code = "engine_error"


class ImageError(EngineError):
    """The bytes are not a usable image."""

    code = "invalid_image"


class UnsupportedImageType(ImageError):
    code = "unsupported_image_type"


class ImageTooLarge(ImageError):
    code = "image_too_large"


class ModelError(EngineError):
    """A model file is missing, corrupt or does not match its metadata."""

    code = "model_error"


class ModelMismatch(EngineError):
    """Vectors of one model met an index or gallery of another (name or dimension): comparing
    them would give meaningless similarities, so it is refused."""

    code = "model_mismatch"
