"""Reads of video jobs: the jobs a user may see and their results in the API's shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet

from recognition.models import VideoAppearance, VideoJob


def _visible_to(user: Any) -> QuerySet[VideoJob]:
    videos = VideoJob.objects.all()
    if getattr(user, "is_superuser", False):
        return videos
    if not getattr(user, "is_authenticated", False):
        return videos.none()
    return videos.filter(user=user)


def video_get_for_user(*, user: Any, video_id: int) -> VideoJob | None:
    """The video job if it exists and the user may see it (their own; every one for a superuser)."""
    return _visible_to(user).filter(pk=video_id).first()


def video_list_for_user(*, user: Any) -> QuerySet[VideoJob]:
    if not getattr(user, "is_authenticated", False):
        return VideoJob.objects.none()
    return VideoJob.objects.filter(user=user).order_by("-created_at", "-id")


def video_appearance_get(*, video: VideoJob, index: int) -> VideoAppearance | None:
    return video.appearances.filter(index=index).first()


def video_result(*, video: VideoJob, thumbnail_url: Callable[[VideoAppearance], str]) -> dict:
    """``{"id", "status", "duration_s", "frames_processed", "frames_total", "appearances",
    "unknown_tracks", ...}``; names are read now (a renamed member shows the new name, a
    deleted one the name it had)."""
    rows = list(video.appearances.all()) if video.status == VideoJob.Status.DONE else []
    from members.selectors import member_names

    names = member_names([r.member_id for r in rows if r.member_id])

    def shape(row: VideoAppearance) -> dict:
        return {
            "index": row.index,
            "member_id": row.member_id,
            "member": names.get(row.member_id, row.member_name) if row.member_id else (row.member_name or None),
            "start_s": round(row.start_s, 3),
            "end_s": round(row.end_s, 3),
            "best_similarity": row.best_similarity,
            "frames": row.frames,
            "thumbnail": thumbnail_url(row) if row.thumbnail.name else None,
        }

    failed = video.status in (VideoJob.Status.FAILED, VideoJob.Status.CANCELLED)
    return {
        "id": video.pk,
        "status": video.status,
        "finished": video.is_finished,
        "error": {"code": video.error_code, "message": video.error_message} if failed else None,
        "original_name": video.original_name,
        "container": video.container,
        "width": video.width,
        "height": video.height,
        "duration_s": video.duration_s,
        "sample_fps": video.sample_fps,
        "frames_processed": video.frames_processed,
        "frames_total": video.frames_total,
        "cancel_requested": video.cancel_requested,
        # The decoder stopped before the container's end: the file was cut short.
        "truncated": bool((video.result or {}).get("truncated")),
        "model_name": video.model_name,
        "attempts": video.attempts,
        "created_at": video.created_at.isoformat() if video.created_at else None,
        "finished_at": video.finished_at.isoformat() if video.finished_at else None,
        "appearances": [shape(r) for r in rows if r.member_id is not None],
        "unknown_tracks": [shape(r) for r in rows if r.member_id is None],
        "timings": video.timings or {},
    }
