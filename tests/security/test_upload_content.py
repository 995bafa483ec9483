"""Uploads are judged by their content, never by their name or declared type: text named .jpg
is refused and a real JPEG named .txt is accepted, on the pages and through the API."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from members.models import FaceSample, Member, PhotoUpload
from recognition.models import RecognitionJob

from .conftest import api_for, jpeg_bytes, make_user, media_files

pytestmark = pytest.mark.django_db

NOT_AN_IMAGE = b"<?php system($_GET['c']); ?> this is text, not a photo\n" * 20
XHR = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest", "HTTP_ACCEPT": "application/json"}


def fake_jpeg():
    return SimpleUploadedFile("holiday.jpg", NOT_AN_IMAGE, content_type="image/jpeg")


def real_jpeg_named_txt():
    return SimpleUploadedFile("notes.txt", jpeg_bytes(), content_type="text/plain")


def test_upload_page(client, media_root):
    client.force_login(make_user("alice"))
    refused = client.post(reverse("home"), {"photos": fake_jpeg()}, **XHR)
    assert refused.status_code == 415 and refused.json()["error"]["code"] == "unsupported_image_type"
    assert not RecognitionJob.objects.exists() and media_files(media_root) == []

    accepted = client.post(reverse("home"), {"photos": real_jpeg_named_txt()}, **XHR)
    assert accepted.status_code == 201
    job = RecognitionJob.objects.get()
    assert job.photo.name.endswith(".jpg") and job.original_name == "notes.txt"  # the type came from the bytes


def test_enrolment_page(client, media_root):
    client.force_login(make_user("boss", is_staff=True))
    refused = client.post(reverse("member-enrol"), {"display_name": "Eve", "mode": "average", "photos": [fake_jpeg()]})
    assert refused.status_code == 200 and "holiday.jpg: The file is not an image" in refused.content.decode()
    assert not Member.objects.exists() and not PhotoUpload.objects.exists() and media_files(media_root) == []

    accepted = client.post(
        reverse("member-enrol"), {"display_name": "Eve", "mode": "average", "photos": [real_jpeg_named_txt()]}
    )
    assert accepted.status_code == 302
    assert PhotoUpload.objects.get().original_name == "notes.txt"


def test_api_recognize(media_root):
    api = api_for(make_user("alice"))
    refused = api.post("/api/v1/recognize", {"image": fake_jpeg()}, format="multipart")
    assert refused.status_code == 415 and refused.json()["error"]["code"] == "unsupported_image_type"
    assert not RecognitionJob.objects.exists() and media_files(media_root) == []

    accepted = api.post("/api/v1/recognize", {"image": real_jpeg_named_txt()}, format="multipart")
    assert accepted.status_code == 202, accepted.content
    assert RecognitionJob.objects.get().photo.name.endswith(".jpg")


def test_api_member_enrolment(manager_api, fake_engine, media_root):
    refused = manager_api.post("/api/v1/members", {"display_name": "Eve", "photos": [fake_jpeg()]}, format="multipart")
    assert refused.status_code == 415 and refused.json()["error"]["code"] == "unsupported_image_type"
    assert not Member.objects.exists() and media_files(media_root) == []

    from tests.fakes import face_photo

    # A real JPEG whose name says text: the content decides.
    photo = SimpleUploadedFile("face.txt", face_photo("red", fmt="JPEG"), content_type="text/plain")
    accepted = manager_api.post("/api/v1/members", {"display_name": "Eve", "photos": [photo]}, format="multipart")
    assert accepted.status_code == 201, accepted.content
    assert FaceSample.objects.get().photo.name.endswith(".jpg")
