"""POST /api/v1/camera/frame: one camera frame of a stream, answered in the same request.

The camera page posts with its session (and CSRF token); a client with an API token may too.
It has its own rate (FACESITE_CAMERA_RATE) instead of the engine rate of photo calls.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from facesite.api.fields import ImageUploadField
from facesite.api.views import IMAGE_ERRORS, ApiView, error_responses, image_request
from recognition import camera


class FrameInput(serializers.Serializer):
    frame = ImageUploadField(help_text="The frame: a JPEG (or PNG) of at most FACESITE_CAMERA_MAX_SIDE px.")
    stream = serializers.RegexField(
        camera.STREAM_ID, help_text="The client's stream id (1-64 letters, digits, - or _): its tracks."
    )


class TrackedFaceOut(serializers.Serializer):
    track = serializers.IntegerField(help_text="The face's track within the stream.")
    box = serializers.ListField(child=serializers.FloatField(), min_length=4, max_length=4)
    state = serializers.ChoiceField(
        ["known", "unknown", "pending"], help_text="pending: the track has not agreed on a name yet."
    )
    member_id = serializers.IntegerField(allow_null=True)
    member = serializers.CharField(allow_null=True)
    similarity = serializers.FloatField(allow_null=True)
    embedded = serializers.BooleanField(help_text="Whether this frame was embedded (else the track's last one).")


class FrameOut(serializers.Serializer):
    stream = serializers.CharField()
    frame = serializers.IntegerField(help_text="The frame's number within the stream (this process).")
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    faces = TrackedFaceOut(many=True)
    timings = serializers.DictField(child=serializers.FloatField())


class CameraFrameView(ApiView):
    throttle_classes = [camera.CameraRateThrottle]
    max_request_setting = "FACESITE_CAMERA_MAX_FRAME_BYTES"

    @extend_schema(
        operation_id="camera_frame",
        summary="Recognise one camera frame (tracked, named over a few frames)",
        request=image_request(FrameInput),
        responses={200: FrameOut, **error_responses(*IMAGE_ERRORS)},
        tags=["recognition"],
    )
    def post(self, request):
        data = FrameInput(data=request.data)
        data.is_valid(raise_exception=True)
        body = camera.camera_frame(
            user_id=request.user.pk,
            stream_id=data.validated_data["stream"],
            data=data.validated_data["frame"][1],
        )
        return Response(FrameOut(body).data)
