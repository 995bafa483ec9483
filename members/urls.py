"""Members pages (wired under /members/)."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.member_list_view, name="member-list"),
    path("enrol/", views.member_enrol, name="member-enrol"),
    path("<int:member_id>/", views.member_detail, name="member-detail"),
    path("faces/<int:face_id>/photo", views.face_photo, name="member-face-photo"),
    path("faces/<int:face_id>/confirm", views.face_confirm, name="member-face-confirm-page"),
]
