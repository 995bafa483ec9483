"""Shapes of the unknown-people endpoints (/api/v1/unknown-clusters, members' appearances)."""

from __future__ import annotations

from rest_framework import serializers

from facesite.api.views import MAX_ID


class UnknownFaceOut(serializers.Serializer):
    id = serializers.IntegerField()
    job_id = serializers.IntegerField(allow_null=True, help_text="The photo job of the face (null for a video's).")
    video_id = serializers.IntegerField(
        allow_null=True, help_text="The video of the unknown person (null for a photo's)."
    )
    face_index = serializers.IntegerField(
        help_text="0-based index of the face in the job's result, or of the appearance in the video's."
    )
    box = serializers.ListField(
        child=serializers.FloatField(), help_text="[x, y, w, h] in the job's photo (a video's: in its best frame)."
    )
    score = serializers.FloatField(help_text="Detection score; faces are listed best first.")
    created_at = serializers.CharField(allow_null=True)


class UnknownClusterOut(serializers.Serializer):
    id = serializers.IntegerField()
    size = serializers.IntegerField()
    model_name = serializers.CharField()
    dismissed = serializers.BooleanField()
    faces = UnknownFaceOut(many=True)
    representative = UnknownFaceOut(allow_null=True)
    updated_at = serializers.CharField(allow_null=True)


class UnknownClusterListOut(serializers.Serializer):
    results = UnknownClusterOut(many=True)


class UnknownClusterListQuery(serializers.Serializer):
    dismissed = serializers.BooleanField(default=False, help_text="List the dismissed clusters instead.")
    limit = serializers.IntegerField(default=100, min_value=1, max_value=500)


class AssignIn(serializers.Serializer):
    member_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    display_name = serializers.CharField(required=False, max_length=200, allow_blank=False)

    def validate(self, attrs: dict) -> dict:
        if ("member_id" in attrs) == ("display_name" in attrs):
            raise serializers.ValidationError("Give either member_id (an existing member) or display_name (a new one).")
        return attrs


class AssignOut(serializers.Serializer):
    member_id = serializers.IntegerField()
    display_name = serializers.CharField()
    created = serializers.BooleanField(help_text="True when a new member was created.")
    faces_sent = serializers.IntegerField(help_text="Faces queued for enrolment (the workers add them).")


class MergeIn(serializers.Serializer):
    other_id = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="The cluster merged into this one.")


class SplitIn(serializers.Serializer):
    face_id = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="The face taken out.")


class SplitOut(serializers.Serializer):
    cluster = UnknownClusterOut()
    new_cluster = UnknownClusterOut()


class DismissIn(serializers.Serializer):
    dismissed = serializers.BooleanField(default=True, help_text="False brings a dismissed cluster back.")


class AppearanceOut(serializers.Serializer):
    job_id = serializers.IntegerField(allow_null=True, help_text="The photo job (null for a video).")
    video_id = serializers.IntegerField(allow_null=True, help_text="The video (null for a photo job).")
    face_index = serializers.IntegerField(help_text="The face's index in the job's result, or the appearance's.")
    similarity = serializers.FloatField(allow_null=True)
    start_s = serializers.FloatField(allow_null=True, help_text="A video's: when the member appears (seconds).")
    end_s = serializers.FloatField(allow_null=True)
    created_at = serializers.CharField(allow_null=True)
    original_name = serializers.CharField()


class AppearanceListOut(serializers.Serializer):
    results = AppearanceOut(many=True)
