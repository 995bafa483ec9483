"""A full disk while an upload is stored: a clear error to the user and nothing half-written.

MEDIA_ROOT is a real 64 kB tmpfs (``full_disk``): a photo of ~100 kB starts being written, the
kernel answers ENOSPC midway, and the partial file must be gone, with no row in the database.
"""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from rest_framework.test import APIClient

from accounts.services import token_create
from facesite.disk_full import StorageFull
from members.models import FaceSample, Member, PhotoUpload
from recognition.models import RecognitionJob
from tests.conftest import require_file
from tests.faults.conftest import fill, stored_files

pytestmark = pytest.mark.django_db

BIG = "samples/face_recognition/examples/obama-480p.jpg"  # 103 kB: does not fit in 64 kB
SMALL = "lfw/lfw-deepfunneled/Sandy_Smith/Sandy_Smith_0001.jpg"  # 9 kB: fits


def test_the_storage_removes_the_partial_file(full_disk):
    fill(full_disk, leave=16 * 1024)
    data = require_file(BIG).read_bytes()
    with pytest.raises(StorageFull) as raised:
        default_storage.save("jobs/ab/partial.jpg", ContentFile(data))
    assert raised.value.code == "storage_full" and "nothing was saved" in raised.value.message
    # The kernel did refuse midway (ENOSPC is the cause), and only the ballast remains.
    assert raised.value.__cause__.errno == 28
    assert stored_files(full_disk) == [full_disk / "ballast"]


def test_the_storage_stores_what_fits(full_disk):
    name = default_storage.save("jobs/ab/small.jpg", ContentFile(require_file(SMALL).read_bytes()))
    assert (full_disk / name).read_bytes() == require_file(SMALL).read_bytes()


def test_the_api_answers_507_and_keeps_nothing(full_disk, django_user_model):
    user = django_user_model.objects.create_user("uploader", password="pw-uploader-1")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=user, name='t')[1]}")
    with open(require_file(BIG), "rb") as photo:
        response = client.post("/api/v1/recognize", {"image": photo}, format="multipart")
    assert response.status_code == 507, response.content
    assert response.json()["error"]["code"] == "storage_full"
    assert RecognitionJob.objects.count() == 0
    assert stored_files(full_disk) == []


def test_the_upload_page_shows_a_form_error_and_keeps_nothing(full_disk, client, django_user_model):
    user = django_user_model.objects.create_user("pageuser", password="pw-pageuser-1")
    client.force_login(user)
    with open(require_file(BIG), "rb") as photo:
        response = client.post("/", {"photos": [photo]}, follow=True)
    assert response.status_code == 200
    texts = [str(m) for m in response.context["messages"]]
    assert any("no room left" in t for t in texts), texts
    assert RecognitionJob.objects.count() == 0
    assert stored_files(full_disk) == []


def test_staged_member_uploads_are_all_or_nothing(full_disk):
    # The first photo fits, the second does not: neither row nor either file is kept.
    member = Member.objects.create(display_name="Sandy Smith")
    files = [
        ContentFile(require_file(SMALL).read_bytes(), name="small.jpg"),
        ContentFile(require_file(BIG).read_bytes(), name="big.jpg"),
    ]
    from members.services import member_upload_photos

    with pytest.raises(StorageFull):
        member_upload_photos(member=member, files=files)
    assert PhotoUpload.objects.count() == 0
    assert stored_files(full_disk) == []


@pytest.mark.slow
def test_enrolment_with_the_real_engine_keeps_nothing(full_disk, default_embedder):
    from members.services import member_create

    with pytest.raises(StorageFull):
        member_create(display_name="Barack Obama", photos=[require_file(BIG)])
    assert Member.objects.count() == 0 and FaceSample.objects.count() == 0
    assert stored_files(full_disk) == []
