"""Errors the engine raises for bad input or a bad model; each carries a stable code."""
from __future__ import annotations


class EngineError(Exception):
    """Base class; ``code`` is stable and safe to show to API clients."""

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
