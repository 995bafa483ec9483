"""Uploaded photos go only to users allowed to see them: another user's job photo, its face crop
(the "this is..." enrolment) and status -> 404; members' photos need the member permission (or
staff) -> 403 otherwise; anonymous callers -> the log-in page (pages) or 401 (API); and MEDIA_URL
is not served at all, not even with DEBUG on."""

from __future__ import annotations

import importlib

import pytest
from django.conf import settings
from django.urls import Resolver404, clear_url_caches, resolve, reverse
from rest_framework.test import APIClient

from members import services as member_services
from recognition.services import job_create
from tests.fakes import face_photo

from .conftest import api_for, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return make_user("owner")


@pytest.fixture
def job(owner, media_root, fake_engine, settings):
    """A finished job with one face, so its face crop could be enrolled."""
    from recognition.services import job_run

    settings.FACESITE_GALLERY = {**settings.FACESITE_GALLERY, "IDENTIFICATION_THRESHOLD": 0.9}  # fake model
    job = job_create(user=owner, upload=face_photo("red"))
    assert job_run(job_id=job.pk).state == "done"
    job.refresh_from_db()
    assert len(job.result["faces"]) == 1
    return job


@pytest.fixture
def face(fake_engine):
    member = member_services.member_create(display_name="Ada", photos=[face_photo("red")]).member
    return member.faces.get()


def test_job_photo_pages(client, owner, job):
    photo, status = reverse("job-photo", args=[job.pk]), reverse("job-status", args=[job.pk])
    detail = reverse("job-detail", args=[job.pk])
    for url in (photo, status, detail):  # anonymous: the log-in page
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url
    client.force_login(make_user("mallory", is_staff=True))  # staff, but not the owner
    for url in (photo, status, detail):
        assert client.get(url).status_code == 404, url
    # Nor can another user's face be cut out and enrolled ("this is ..."), even by staff.
    enrol = reverse("job-face-enrol", args=[job.pk, 0])
    member = member_services.member_create(display_name="Target").member
    assert client.post(enrol, {"member": member.pk}).status_code == 404
    assert not member.uploads.exists()
    client.force_login(owner)
    response = client.get(photo)
    assert response.status_code == 200 and b"".join(response.streaming_content) == job.photo.open("rb").read()
    assert "private" in response["Cache-Control"]


def test_job_api(owner, job):
    url = f"/api/v1/jobs/{job.pk}"
    assert APIClient().get(url).status_code == 401
    other = api_for(make_user("mallory"))
    response = other.get(url)
    assert response.status_code == 404 and response.json()["error"]["code"] == "job_not_found"
    assert api_for(owner).get(url).status_code == 200


def test_member_photo_pages(client, face):
    urls = [
        reverse("member-face-photo", args=[face.pk]),
        reverse("member-detail", args=[face.member_id]),
        reverse("member-list"),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url
    client.force_login(make_user("plain"))  # logged in, no member permission
    for url in urls:
        assert client.get(url).status_code == 403, url
    client.force_login(make_user("viewer", perms=("view_member",)))
    for url in urls:
        assert client.get(url).status_code == 200, url
    client.force_login(make_user("boss", is_staff=True))
    assert client.get(urls[0]).status_code == 200


def test_member_photo_api(face):
    url = f"/api/v1/members/{face.member_id}/faces"
    assert APIClient().get(url).status_code == 401
    assert api_for(make_user("plain")).get(url).status_code == 403
    listed = api_for(make_user("viewer", perms=("view_member",))).get(url)
    assert listed.status_code == 200
    # The photo URL the API hands out is the permission-checked view, never MEDIA_URL.
    photo_url = listed.json()[0]["photo_url"]
    assert photo_url.endswith(reverse("member-face-photo", args=[face.pk]))
    assert settings.MEDIA_URL not in photo_url


def test_admin_thumbnails_use_the_checked_view(admin_client, face):
    page = admin_client.get(reverse("admin:members_member_changelist")).content.decode()
    assert reverse("member-face-photo", args=[face.pk]) in page and face.photo.name not in page


def test_media_url_is_not_served_even_with_debug(client, face, job, settings):
    settings.DEBUG = True
    import facesite.urls

    try:
        clear_url_caches()
        module = importlib.reload(facesite.urls)  # the URLconf as a DEBUG server builds it
        for name in (face.photo.name, job.photo.name):
            with pytest.raises(Resolver404):
                resolve(f"/{settings.MEDIA_URL.strip('/')}/{name}", urlconf=module)
        client.force_login(make_user("boss", is_staff=True, is_superuser=True))
        response = client.get(f"/{settings.MEDIA_URL.strip('/')}/{face.photo.name}")
        assert response.status_code == 404
    finally:
        settings.DEBUG = False
        clear_url_caches()
        importlib.reload(facesite.urls)
