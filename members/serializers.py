"""API serializers of the member endpoints (validation and answers only; the services act)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from faceengine.quality import WARNING_CODES
from facesite.api.fields import ImageUploadField
from members.services import MODES, ON_EXISTING


class StrictCharField(serializers.CharField):
    """Text that must arrive as text: DRF's CharField would turn 42 or true into "42"/"True"."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class MemberIn(serializers.Serializer):
    display_name = StrictCharField(max_length=200)
    external_id = StrictCharField(max_length=100, required=False, allow_null=True, allow_blank=True)
    notes = StrictCharField(required=False, allow_blank=True, max_length=10000)
    is_active = serializers.BooleanField(required=False, default=True)


class MemberCreateIn(MemberIn):
    photos = serializers.ListField(
        child=ImageUploadField(),
        required=False,
        max_length=50,
        help_text="Enrolment photos, one face each (the largest is used).",
    )


class MemberUpdateIn(MemberIn):
    """PUT: every detail; PATCH (partial=True): any of them."""


class FacesIn(serializers.Serializer):
    mode = serializers.ChoiceField(
        choices=MODES,
        default="average",
        help_text="average: add to the member's faces (add_embds); replace: replace all of them (update_customs).",
    )
    photos = serializers.ListField(child=ImageUploadField(), min_length=1, max_length=50)


@extend_schema_field(OpenApiTypes.BINARY)
class ZipField(serializers.FileField):
    pass


class BulkIn(serializers.Serializer):
    archive = ZipField(
        help_text="A zip with one folder per person (the folder name is the display name and the external id)."
    )
    on_existing = serializers.ChoiceField(choices=ON_EXISTING, default="skip")


class MemberListQuery(serializers.Serializer):
    search = serializers.CharField(required=False, allow_blank=True, max_length=200)
    active = serializers.BooleanField(required=False, allow_null=True, default=None)


# ------------------------------------------------------------------------------- outputs


class MemberOut(serializers.Serializer):
    id = serializers.IntegerField()
    display_name = serializers.CharField()
    external_id = serializers.CharField(allow_null=True)
    notes = serializers.CharField(allow_blank=True)
    is_active = serializers.BooleanField()
    face_count = serializers.IntegerField()
    url = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class MemberPageOut(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = MemberOut(many=True)


class PhotoOutcomeOut(serializers.Serializer):
    index = serializers.IntegerField()
    name = serializers.CharField()
    ok = serializers.BooleanField()
    code = serializers.CharField(allow_null=True)
    message = serializers.CharField(allow_null=True)
    face_id = serializers.IntegerField(allow_null=True)
    faces_found = serializers.IntegerField()
    detection = serializers.CharField(allow_null=True)
    warnings = serializers.ListField(child=serializers.CharField(), help_text="Quality warning codes of the face.")
    flagged = serializers.BooleanField(help_text="Far from the member's other faces: left out of the template.")


class EnrolmentOut(serializers.Serializer):
    model_name = serializers.CharField(allow_blank=True)
    template_count = serializers.IntegerField()
    photos = PhotoOutcomeOut(many=True)


class MemberEnrolledOut(serializers.Serializer):
    member = MemberOut()
    enrolment = EnrolmentOut()


class FaceQualityOut(serializers.Serializer):
    """The quality record of a face (faceengine.quality); null values: not measured (older faces)."""

    eye_distance = serializers.FloatField(allow_null=True, help_text="Pixels between the eyes.")
    box_size = serializers.FloatField(help_text="The shorter side of the face box, pixels.")
    sharpness = serializers.FloatField(allow_null=True, help_text="Laplacian variance of the aligned crop.")
    detection_score = serializers.FloatField()
    yaw = serializers.FloatField(allow_null=True)
    pitch = serializers.FloatField(allow_null=True)
    roll = serializers.FloatField(allow_null=True)
    warnings = serializers.ListField(
        child=serializers.ChoiceField(choices=list(WARNING_CODES)), help_text="Warning codes."
    )


class FaceSampleOut(serializers.Serializer):
    id = serializers.IntegerField()
    photo_url = serializers.CharField()
    image_width = serializers.IntegerField()
    image_height = serializers.IntegerField()
    box = serializers.ListField(child=serializers.FloatField())
    landmarks = serializers.JSONField()
    detection_score = serializers.FloatField()
    detection = serializers.CharField()
    detector = serializers.CharField()
    quality = FaceQualityOut()
    status = serializers.ChoiceField(
        choices=["ok", "flagged", "confirmed"],
        help_text="flagged: far from the member's other faces and left out of the template until confirmed.",
    )
    outlier_similarity = serializers.FloatField(
        allow_null=True, help_text="Cosine to the mean of the member's other faces (null with fewer than 2)."
    )
    outlier_model = serializers.CharField(allow_blank=True, help_text="The model of that comparison.")
    in_template = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class FaceConfirmOut(serializers.Serializer):
    confirmed = serializers.BooleanField(help_text="False when the face was not flagged (nothing changed).")
    face = FaceSampleOut()


class BulkOut(serializers.Serializer):
    id = serializers.CharField()
    url = serializers.CharField()
    status = serializers.ChoiceField(choices=["queued", "running", "done", "failed"])
    error = serializers.CharField(allow_null=True, required=False, help_text="Why it failed (status failed).")
    people = serializers.IntegerField(help_text="Person folders found in the zip.")
    files = serializers.IntegerField(help_text="Files found in those folders.")
    summary = serializers.JSONField(allow_null=True, help_text="members.services.FolderSummary when done.")
