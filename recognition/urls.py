"""Pages of the recognition app (wired at the site root)."""

from django.urls import path

from . import unknown_views, video_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("jobs/", views.job_list, name="job-list"),
    path("jobs/<int:job_id>/", views.job_detail, name="job-detail"),
    path("jobs/<int:job_id>/status.json", views.job_status, name="job-status"),
    path("jobs/<int:job_id>/photo", views.job_photo, name="job-photo"),
    path("jobs/<int:job_id>/faces/<int:face_index>/enrol", views.job_face_enrol, name="job-face-enrol"),
    path("camera/", video_views.camera, name="camera"),
    path("videos/", video_views.video_list, name="video-list"),
    # A video job's id is a job id too: the same path argument as photo jobs.
    path("videos/<int:job_id>/", video_views.video_detail, name="video-detail"),
    path("videos/<int:job_id>/file", video_views.video_file, name="video-file"),
    path("unknown/", unknown_views.unknown_list, name="unknown-list"),
    path("unknown/faces/<int:face_id>/crop", unknown_views.unknown_face_crop, name="unknown-face-crop"),
    # One address for every cluster form (the cluster and the action are fields of the form).
    path("unknown/actions", unknown_views.unknown_action, name="unknown-action"),
]
