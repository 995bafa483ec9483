"""API serializers of the recognition endpoints, and the image field every upload goes through.

An image arrives as a multipart file or, in a JSON body, as a base64 string (a ``data:`` URI is
fine). Either way the field returns ``(name, bytes)``, read up to the size limit plus one byte;
the type is decided later by the engine from the content, never from the name.
"""
from __future__ import annotations

import base64
import binascii
import os

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from recognition.engine.errors import ImageError, ImageTooLarge


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
            name = os.path.basename(str(getattr(data, "name", "") or ""))[:255] or label
            size = getattr(data, "size", None)
            if size is not None and size > limit:
                raise ImageTooLarge(f"{name} is {size} bytes; the limit is {limit}.")
            if hasattr(data, "seek"):
                data.seek(0)
            raw = data.read(limit + 1)
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
    attrs = {"__module__": serializer_class.__module__}
    for name, field in serializer_class().fields.items():
        if isinstance(field, ImageUploadField):
            attrs[name] = Base64ImageField(required=field.required, help_text=field.help_text)
        elif isinstance(field, serializers.ListField) and isinstance(field.child, ImageUploadField):
            attrs[name] = serializers.ListField(child=Base64ImageField(), required=field.required,
                                                min_length=field.min_length, max_length=field.max_length,
                                                help_text=field.help_text)
    variant = type(serializer_class.__name__ + "Json", (serializer_class,), attrs)
    _JSON_VARIANTS[serializer_class] = variant
    return variant


# ------------------------------------------------------------------------------- inputs


class ImageInput(serializers.Serializer):
    image = ImageUploadField(help_text="The photo: a file (multipart) or base64 (JSON).")


class RecognizeQuery(serializers.Serializer):
    wait = serializers.FloatField(required=False, min_value=0, max_value=30, default=0,
                                  help_text="Wait up to this many seconds for the result (a small photo).")


class VerifyInput(serializers.Serializer):
    image = ImageUploadField(help_text="The first photo.")
    image2 = ImageUploadField(required=False, help_text="The second photo (or give member_id).")
    member_id = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1,
                                         help_text="Compare with this member's template instead.")

    def validate(self, attrs):
        if ("image2" in attrs) == ("member_id" in attrs):
            raise serializers.ValidationError("Give exactly one of image2 and member_id.")
        return attrs


# ------------------------------------------------------------------------------- outputs


class ErrorDetail(serializers.Serializer):
    code = serializers.CharField(help_text="Stable; clients may branch on it.")
    message = serializers.CharField(help_text="A sentence for a person.")
    details = serializers.DictField(required=False)


class ErrorResponse(serializers.Serializer):
    error = ErrorDetail()


class FaceOut(serializers.Serializer):
    box = serializers.ListField(child=serializers.FloatField(), min_length=4, max_length=4,
                                help_text="x, y, width, height in pixels of the upright photo.")
    score = serializers.FloatField()
    landmarks = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()),
                                      help_text="Five [x, y]: eyes, nose, mouth corners.")


class ImageSizeOut(serializers.Serializer):
    width = serializers.IntegerField()
    height = serializers.IntegerField()


class DetectOut(serializers.Serializer):
    image = ImageSizeOut()
    faces = FaceOut(many=True)


class EmbeddedFaceOut(FaceOut):
    embedding = serializers.ListField(child=serializers.FloatField())


class EmbeddingsOut(serializers.Serializer):
    model = serializers.CharField()
    dim = serializers.IntegerField()
    image = ImageSizeOut()
    faces = EmbeddedFaceOut(many=True)


class VerifyOut(serializers.Serializer):
    model = serializers.CharField()
    similarity = serializers.FloatField(help_text="Cosine similarity of the two faces.")
    threshold = serializers.FloatField(help_text="The model's 1:1 verification threshold.")
    same_person = serializers.BooleanField()
    member_id = serializers.IntegerField(allow_null=True)
    face = FaceOut(help_text="The face used in image.")
    face2 = FaceOut(allow_null=True, help_text="The face used in image2 (null with member_id).")


class JobFaceOut(FaceOut):
    member_id = serializers.IntegerField(allow_null=True)
    member = serializers.CharField(allow_null=True)
    similarity = serializers.FloatField(allow_null=True)
    margin = serializers.FloatField(allow_null=True, required=False)


class JobErrorOut(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class JobOut(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    status = serializers.ChoiceField(choices=["queued", "running", "done", "failed"])
    finished = serializers.BooleanField()
    error = JobErrorOut(allow_null=True)
    original_name = serializers.CharField(allow_blank=True)
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    model_name = serializers.CharField(allow_blank=True)
    attempts = serializers.IntegerField()
    created_at = serializers.CharField(allow_null=True)
    finished_at = serializers.CharField(allow_null=True)
    faces = JobFaceOut(many=True)
    timings = serializers.DictField(child=serializers.FloatField())
