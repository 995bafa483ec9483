"""Pages of the camera and of videos: the live camera, the video list with its upload form,
a video's timeline, and the stored video itself (with byte ranges, so the player can seek)."""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse

from facesite.files import stored_name
from recognition import video_selectors
from recognition.models import VideoJob

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CONTENT_TYPES = {"mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm"}


@login_required
def camera(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "recognition/camera.html",
        {"max_side": settings.FACESITE_CAMERA_MAX_SIDE, "frame_url": reverse("api:camera-frame")},
    )


@login_required
def video_list(request: HttpRequest) -> HttpResponse:
    from django.core.paginator import Paginator

    page = Paginator(video_selectors.video_list_for_user(user=request.user), 25).get_page(request.GET.get("page"))
    return render(
        request,
        "recognition/video_list.html",
        {
            "page": page,
            "max_mb": settings.FACESITE_MAX_VIDEO_BYTES / 1e6,
            "max_bytes": settings.FACESITE_MAX_VIDEO_BYTES,
            "upload_url": reverse("api:video-list"),
        },
    )


def _video_or_404(request: HttpRequest, video_id: int) -> VideoJob:
    video = video_selectors.video_get_for_user(user=request.user, video_id=video_id)
    if video is None:
        raise Http404("No such video.")
    return video


@login_required
def video_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    video = _video_or_404(request, job_id)
    return render(
        request,
        "recognition/video_detail.html",
        {
            "video": video,
            "status_url": reverse("api:video-detail", args=[video.pk]),
            "cancel_url": reverse("api:video-cancel", args=[video.pk]),
            "file_url": reverse("video-file", args=[video.pk]),
        },
    )


@login_required
def video_file(request: HttpRequest, job_id: int) -> HttpResponse | StreamingHttpResponse | FileResponse:
    """The uploaded video, to its owner only; answers a Range request with 206 (seeking)."""
    video = _video_or_404(request, job_id)
    try:
        name = stored_name(video.video)
        size = video.video.storage.size(name)
        handle = video.video.storage.open(name, "rb")
    except OSError:
        raise Http404("The video is no longer stored.") from None
    content_type = CONTENT_TYPES.get(video.container, "application/octet-stream")
    match = RANGE.match(request.headers.get("range", ""))
    if not match or size == 0:
        whole = FileResponse(handle, content_type=content_type)
        whole["Accept-Ranges"] = "bytes"
        whole["Cache-Control"] = "private, max-age=3600"
        return whole
    first, last = match.groups()
    if first == "":  # the last N bytes
        start, end = max(0, size - int(last or 0)), size - 1
    else:
        start, end = int(first), min(int(last) if last else size - 1, size - 1)
    if start > end or start >= size:
        handle.close()
        refused = HttpResponse(status=416)
        refused["Content-Range"] = f"bytes */{size}"
        return refused
    handle.seek(start)
    length = end - start + 1

    def chunks(remaining: int = length):
        try:
            while remaining > 0:
                data = handle.read(min(remaining, 256 * 1024))
                if not data:
                    break
                remaining -= len(data)
                yield data
        finally:
            handle.close()

    response = StreamingHttpResponse(chunks(), status=206, content_type=content_type)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, max-age=3600"
    return response
