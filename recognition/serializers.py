"""API serializers of the recognition endpoints (validation and answers only). The image field
they use is shared by every app: ``facesite.api.fields``."""

from __future__ import annotations

from rest_framework import serializers

from facesite.api.fields import ImageUploadField

# ------------------------------------------------------------------------------- inputs


class ImageInput(serializers.Serializer):
    image = ImageUploadField(help_text="The photo: a file (multipart) or base64 (JSON).")


class RecognizeQuery(serializers.Serializer):
    wait = serializers.FloatField(
        required=False,
        min_value=0,
        max_value=30,
        default=0,
        help_text="Wait up to this many seconds for the result (a small photo).",
    )


class VerifyInput(serializers.Serializer):
    image = ImageUploadField(help_text="The first photo.")
    image2 = ImageUploadField(required=False, help_text="The second photo (or give member_id).")
    member_id = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="Compare with this member's template instead."
    )

    def validate(self, attrs):
        if ("image2" in attrs) == ("member_id" in attrs):
            raise serializers.ValidationError("Give exactly one of image2 and member_id.")
        return attrs


# ------------------------------------------------------------------------------- outputs


class FaceOut(serializers.Serializer):
    box = serializers.ListField(
        child=serializers.FloatField(),
        min_length=4,
        max_length=4,
        help_text="x, y, width, height in pixels of the upright photo.",
    )
    score = serializers.FloatField()
    landmarks = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField()), help_text="Five [x, y]: eyes, nose, mouth corners."
    )
    detector = serializers.CharField(required=False, help_text="The detector that found it: mtcnn or yunet.")
    detection = serializers.CharField(
        required=False,
        help_text="The pass that found it: detected (the normal pass), or a step of the thorough pass "
        "(second_detector, second_pass, rotated) when the normal pass found no face.",
    )


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


class IdentificationOut(serializers.Serializer):
    threshold = serializers.FloatField(help_text="The 1:N cosine threshold the faces were judged by.")
    gallery_size = serializers.IntegerField(help_text="Vectors searched: members (template match) or faces (sample).")
    match = serializers.ChoiceField(choices=["template", "sample"])
    basis = serializers.ChoiceField(
        choices=["calibrated", "setting", "model", "request"],
        help_text="calibrated: from the model's impostor scores for this gallery size and the target "
        "false-accept rate; setting: FACESITE_IDENTIFICATION_THRESHOLD; model: the model's fixed value.",
    )
    false_accept_rate = serializers.FloatField(
        allow_null=True, help_text="Estimated share of strangers' faces named as somebody at this threshold."
    )
    target_false_accept_rate = serializers.FloatField(allow_null=True)


class GalleryOut(IdentificationOut):
    model = serializers.CharField()
    dim = serializers.IntegerField()


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
    identification = IdentificationOut(allow_null=True, required=False)
    timings = serializers.DictField(child=serializers.FloatField())
