"""Pages of the recognition app (wired at the site root)."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("jobs/", views.job_list, name="job-list"),
    path("jobs/<int:job_id>/", views.job_detail, name="job-detail"),
    path("jobs/<int:job_id>/status.json", views.job_status, name="job-status"),
    path("jobs/<int:job_id>/photo", views.job_photo, name="job-photo"),
    path("jobs/<int:job_id>/faces/<int:face_index>/enrol", views.job_face_enrol, name="job-face-enrol"),
]
