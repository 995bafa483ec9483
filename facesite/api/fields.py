"""The image field every upload goes through, and the error shape of the OpenAPI schema.

An image arrives as a multipart file or, in a JSON body, as a base64 string (a ``data:`` URI is
fine). Either way the field returns ``(name, bytes)``, read up to the size limit plus one byte;
the type is decided later by the engine from the content, never from the name.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from faceengine.errors import ImageError, ImageTooLarge
from facesite.uploads import read_upload, upload_name


@extend_schema_field(OpenApiTypes.BINARY)
class ImageUploadField(serializers.Field):
    """A photo: a multipart file or a base64 string. Raises the engine's ImageError/ImageTooLarge
    (mapped to 400/413 by the exception handler) rather than a generic validation error."""

    default_error_messages = {"invalid": "Send the image as a file (multipart) or a base64 string (JSON)."}

    def to_internal_value(self, data) -> tuple[str, bytes]:
        limit = settings.FACESITE_MAX_UPLOAD_BYTES
        label = self.field_name or "image"
        if isinstance(data, str):
            text = data.strip()
            if text.startswith("data:"):
                text = text.partition(",")[2]
            # What `base64` and most encoders print: lines of 76 characters. Whitespace is never
            # part of base64's alphabet, so dropping it changes nothing else.
            text = "".join(text.split())
            if len(text) > (limit + 2) // 3 * 4 + 4:
                raise ImageTooLarge(f"{label} is over the limit of {limit} bytes.")
            try:
                raw = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise ImageError(f"{label} is not a valid base64 string.") from None
            if not raw:
                raise ImageError(f"{label} is empty.")
            return label, raw
        if hasattr(data, "read"):
            name = upload_name(data, label)
            size = getattr(data, "size", None)
            if size is not None and size > limit:
                raise ImageTooLarge(f"{name} is {size} bytes; the limit is {limit}.")
            raw = read_upload(data, limit)
            if len(raw) > limit:
                raise ImageTooLarge(f"{name} is over the limit of {limit} bytes.")
            if not raw:
                raise ImageError(f"{name} is empty.")
            return name, raw
        self.fail("invalid")

    def to_representation(self, value):  # pragma: no cover - input only
        return None


@extend_schema_field({"type": "string", "format": "byte", "description": "The image, base64 (a data: URI is fine)."})
class Base64ImageField(ImageUploadField):
    """The same field, documented as base64 for the JSON form of a request."""


_JSON_VARIANTS: dict[type, type] = {}


def json_variant(serializer_class: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The serializer for the OpenAPI JSON body: image fields documented as base64 strings."""
    if serializer_class in _JSON_VARIANTS:
        return _JSON_VARIANTS[serializer_class]
    attrs: dict[str, Any] = {"__module__": serializer_class.__module__}
    for name, field in serializer_class().fields.items():
        if isinstance(field, ImageUploadField):
            attrs[name] = Base64ImageField(required=field.required, help_text=field.help_text)
        elif isinstance(field, serializers.ListField) and isinstance(field.child, ImageUploadField):
            attrs[name] = serializers.ListField(
                child=Base64ImageField(),
                required=field.required,
                min_length=field.min_length,
                max_length=field.max_length,
                help_text=field.help_text,
            )
    variant = type(serializer_class.__name__ + "Json", (serializer_class,), attrs)
    _JSON_VARIANTS[serializer_class] = variant
    return variant


class ErrorDetail(serializers.Serializer):
    code = serializers.CharField(help_text="Stable; clients may branch on it.")
    message = serializers.CharField(help_text="A sentence for a person.")
    details = serializers.DictField(required=False)


class ErrorResponse(serializers.Serializer):
    error = ErrorDetail()
