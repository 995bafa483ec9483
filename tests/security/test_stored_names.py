"""Stored names never carry anything the uploader chose: files named "../../etc/passwd.jpg" or
"..\\x.jpg" (or an absolute path) land under MEDIA_ROOT with a generated name, through the
upload page, the enrolment page, the admin and the API; nothing is written outside MEDIA_ROOT."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from members.models import FaceSample, Member, PhotoUpload
from recognition.models import RecognitionJob
from tests.fakes import face_photo

from .conftest import api_for, jpeg_bytes, make_user, media_files

pytestmark = pytest.mark.django_db

EVIL_NAMES = ("../../etc/passwd.jpg", "..\\x.jpg", "/etc/passwd.jpg", "....//....//shadow.php")
XHR = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest", "HTTP_ACCEPT": "application/json"}
# <folder>/<2 hex>/<32 hex>.<ext> for photos, members/uploads/<32 hex>.<ext> for staged uploads.
GENERATED = re.compile(r"^(jobs/[0-9a-f]{2}/|members/faces/[0-9a-f]{2}/|members/uploads/)[0-9a-f]{32}\.(jpg|png|bin)$")


def assert_generated(names, media_root, tmp_path) -> None:
    assert names
    for name in names:
        assert GENERATED.match(name), name
        assert (media_root / name).resolve().is_relative_to(media_root.resolve())
    # Nothing landed beside MEDIA_ROOT (its parent is the test's own tmp folder).
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and not p.resolve().is_relative_to(media_root.resolve())]
    assert outside == []


def test_upload_page(client, media_root, tmp_path):
    client.force_login(make_user("alice"))
    for name in EVIL_NAMES:
        response = client.post(reverse("home"), {"photos": SimpleUploadedFile(name, jpeg_bytes())}, **XHR)
        assert response.status_code == 201, (name, response.content)
    jobs = RecognitionJob.objects.all()
    assert_generated([j.photo.name for j in jobs], media_root, tmp_path)
    assert sorted(media_files(media_root)) == sorted(j.photo.name for j in jobs)
    # The original name is kept for display only, reduced to its last part.
    assert all("/" not in j.original_name for j in jobs)


def test_enrolment_page_and_worker(
    client, media_root, tmp_path, fake_engine, eager_celery, django_capture_on_commit_callbacks
):
    client.force_login(make_user("boss", is_staff=True))
    photos = [SimpleUploadedFile(name, face_photo("red")) for name in EVIL_NAMES]
    # Staged first (the worker has not run): generated names in members/uploads/.
    response = client.post(reverse("member-enrol"), {"display_name": "Eve", "mode": "average", "photos": photos})
    assert response.status_code == 302
    assert_generated([u.file.name for u in PhotoUpload.objects.all()], media_root, tmp_path)
    member = Member.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("member-enrol"),
            {
                "member": member.pk,
                "mode": "average",
                "photos": [SimpleUploadedFile(name, face_photo("red")) for name in EVIL_NAMES],
            },
        )
    faces = FaceSample.objects.filter(member=member)
    assert faces.count() == len(EVIL_NAMES)
    assert_generated([f.photo.name for f in faces], media_root, tmp_path)


def test_admin_upload(admin_client, media_root, tmp_path, fake_engine):
    from tests.members.test_admin import form_data

    response = admin_client.post(
        reverse("admin:members_member_add"),
        form_data(
            display_name="Eve", external_id="E-1", photos=[SimpleUploadedFile(n, face_photo("red")) for n in EVIL_NAMES]
        ),
    )
    assert response.status_code == 302
    uploads = PhotoUpload.objects.all()
    assert uploads.count() == len(EVIL_NAMES)
    assert_generated([u.file.name for u in uploads], media_root, tmp_path)
    assert all(u.file.name.endswith(".png") for u in uploads)  # the type of the content, not ".php"


def test_api(media_root, tmp_path, fake_engine):
    api = api_for(make_user("manager", perms=("add_member", "view_member", "change_member")))
    for name in EVIL_NAMES:
        assert (
            api.post(
                "/api/v1/recognize", {"image": SimpleUploadedFile(name, jpeg_bytes())}, format="multipart"
            ).status_code
            == 202
        )
    created = api.post(
        "/api/v1/members",
        {"display_name": "Eve", "photos": [SimpleUploadedFile(name, face_photo("red")) for name in EVIL_NAMES]},
        format="multipart",
    )
    assert created.status_code == 201, created.content
    names = [j.photo.name for j in RecognitionJob.objects.all()] + [f.photo.name for f in FaceSample.objects.all()]
    assert len(names) == 2 * len(EVIL_NAMES)
    assert_generated(names, media_root, tmp_path)
    assert sorted(media_files(media_root)) == sorted(names)
