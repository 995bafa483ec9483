"""The admin for recognition jobs: read-only, since jobs are written only by the services."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from . import services, videos
from .models import RecognitionJob, VideoJob


@admin.register(RecognitionJob)
class RecognitionJobAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "original_name", "status", "face_count", "attempts", "created_at", "finished_at")
    list_filter = ("status", "error_code")
    list_select_related = ("user",)
    search_fields = ("original_name", "user__username", "error_message")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in RecognitionJob._meta.fields] + ["page"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="Faces")
    def face_count(self, job: RecognitionJob) -> str:
        return str(len((job.result or {}).get("faces", []))) if job.result else "–"

    @admin.display(description="Result page")
    def page(self, job: RecognitionJob) -> str:
        return format_html('<a href="{}">job {}</a>', reverse("job-detail", args=[job.pk]), job.pk)

    def delete_model(self, request: HttpRequest, obj: RecognitionJob) -> None:
        services.job_delete(job=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[RecognitionJob]) -> None:
        for job in queryset:
            services.job_delete(job=job)


@admin.register(VideoJob)
class VideoJobAdmin(admin.ModelAdmin):
    """Read-only too: video jobs are written by recognition.videos; deleting goes through it."""

    list_display = ("id", "user", "original_name", "status", "duration_s", "frames_processed", "attempts", "created_at")
    list_filter = ("status", "error_code", "container")
    list_select_related = ("user",)
    search_fields = ("original_name", "user__username", "error_message")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in VideoJob._meta.fields] + ["page"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="Video page")
    def page(self, video: VideoJob) -> str:
        return format_html('<a href="{}">video {}</a>', reverse("video-detail", args=[video.pk]), video.pk)

    def delete_model(self, request: HttpRequest, obj: VideoJob) -> None:
        videos.video_delete(video=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[VideoJob]) -> None:
        for video in queryset:
            videos.video_delete(video=video)
