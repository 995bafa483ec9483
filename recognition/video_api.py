"""/api/v1/videos: upload a video (a job for the workers), read its appearances, cancel it,
and the thumbnails of the people seen."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from facesite.api.errors import ApiError
from facesite.api.views import ApiView, error_responses, valid_id
from facesite.files import private_file_response
from recognition import video_selectors, videos
from recognition.models import VideoJob


class VideoInput(serializers.Serializer):
    video = serializers.FileField(
        allow_empty_file=True,  # the service says why an empty file is refused
        help_text="The video: mp4, webm or mov, at most FACESITE_MAX_VIDEO_BYTES.",
    )


class VideoAppearanceOut(serializers.Serializer):
    index = serializers.IntegerField()
    member_id = serializers.IntegerField(allow_null=True, help_text="null for somebody unknown.")
    member = serializers.CharField(allow_null=True)
    start_s = serializers.FloatField()
    end_s = serializers.FloatField()
    best_similarity = serializers.FloatField(allow_null=True)
    frames = serializers.IntegerField(help_text="Sampled frames the appearance spans.")
    thumbnail = serializers.CharField(allow_null=True, help_text="URL of the best frame's face (JPEG).")


class VideoOut(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    status = serializers.ChoiceField([s.value for s in VideoJob.Status])
    finished = serializers.BooleanField()
    error = serializers.DictField(allow_null=True)
    original_name = serializers.CharField()
    container = serializers.CharField()
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    duration_s = serializers.FloatField(allow_null=True)
    sample_fps = serializers.FloatField()
    frames_processed = serializers.IntegerField()
    frames_total = serializers.IntegerField(help_text="Sampled frames to look at (0: not known in advance).")
    cancel_requested = serializers.BooleanField()
    truncated = serializers.BooleanField(help_text="The video ended before its container said: it was cut short.")
    model_name = serializers.CharField()
    attempts = serializers.IntegerField()
    created_at = serializers.CharField(allow_null=True)
    finished_at = serializers.CharField(allow_null=True)
    appearances = VideoAppearanceOut(many=True)
    unknown_tracks = VideoAppearanceOut(many=True)
    timings = serializers.DictField()


def _body(request, video: VideoJob) -> dict:
    def thumbnail_url(row) -> str:
        return request.build_absolute_uri(reverse("api:video-thumbnail", args=[video.pk, row.index]))

    data = video_selectors.video_result(video=video, thumbnail_url=thumbnail_url)
    data["url"] = request.build_absolute_uri(reverse("api:video-detail", args=[video.pk]))
    return VideoOut(data).data


def _video_or_404(request, video_id) -> VideoJob:
    valid = valid_id(video_id)
    video = video_selectors.video_get_for_user(user=request.user, video_id=valid) if valid else None
    if video is None:
        raise ApiError("video_not_found", "No such video (or it is not yours).", status_code=404)
    return video


class VideoListView(ApiView):
    uses_engine = True  # the engine rate: in the embedded default the job runs in the request
    parser_classes = [MultiPartParser]
    max_request_setting = "FACESITE_MAX_VIDEO_BYTES"

    @extend_schema(
        operation_id="video_create",
        summary="Upload a video: a job that finds who appears in it, and when",
        request={"multipart/form-data": VideoInput},
        responses={202: VideoOut, **error_responses(400, 413, 415)},
        tags=["recognition"],
    )
    def post(self, request):
        data = VideoInput(data=request.data)
        data.is_valid(raise_exception=True)
        video = videos.video_create(user=request.user, upload=data.validated_data["video"])
        video.refresh_from_db()  # in eager mode it has already run at the commit
        body = _body(request, video)
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


class VideoDetailView(ApiView):
    @extend_schema(
        operation_id="video_read",
        summary="A video job: progress, appearances and unknown tracks",
        responses={200: VideoOut, **error_responses(404)},
        tags=["recognition"],
    )
    def get(self, request, video_id: int):
        return Response(_body(request, _video_or_404(request, video_id)))


class VideoCancelView(ApiView):
    @extend_schema(
        operation_id="video_cancel",
        summary="Cancel a video job (queued: at once; running: at its next progress save)",
        request=None,
        responses={200: VideoOut, **error_responses(404)},
        tags=["recognition"],
    )
    def post(self, request, video_id: int):
        video = videos.video_cancel(video=_video_or_404(request, video_id))
        return Response(_body(request, video))


class VideoThumbnailView(ApiView):
    @extend_schema(
        operation_id="video_thumbnail",
        summary="The face of one appearance (JPEG)",
        responses={(200, "image/jpeg"): bytes, **error_responses(404)},
        tags=["recognition"],
    )
    def get(self, request, video_id: int, index: int):
        video = _video_or_404(request, video_id)
        row = video_selectors.video_appearance_get(video=video, index=index)
        if row is None or not row.thumbnail.name:
            raise ApiError("video_not_found", "No such appearance.", status_code=404)
        return private_file_response(row.thumbnail)
