"""Size and pixel limits: a file over FACESITE_MAX_UPLOAD_BYTES and a decompression bomb (a tiny
file whose header claims a huge image) are refused with a clear error, and nothing is stored:
no file under MEDIA_ROOT, no row. Pages, API and the member services alike."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.defaultfilters import filesizeformat
from django.urls import reverse

from members import services as member_services
from members.errors import InvalidImage
from members.models import Member, PhotoUpload
from recognition.models import RecognitionJob

from .conftest import api_for, jpeg_bytes, make_user, media_files, png_claiming

pytestmark = pytest.mark.django_db

XHR = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest", "HTTP_ACCEPT": "application/json"}
LIMIT = 60_000


@pytest.fixture(autouse=True)
def small_limits(settings):
    settings.FACESITE_MAX_UPLOAD_BYTES = LIMIT
    settings.FACESITE_MAX_IMAGE_PIXELS = 1_000_000


@pytest.fixture
def engine_with_limits(monkeypatch, settings):
    """The fake engine built as facesite.engine builds the real one: limits from the settings."""
    from faceengine.recognizer import Recognizer
    from facesite.engine import image_limits
    from tests.fakes import FakeDetector, FakeEmbedder

    recognizer = Recognizer(FakeDetector(), FakeEmbedder(), limits=image_limits())
    monkeypatch.setattr("facesite.engine.recognizer", lambda model_name=None: recognizer)
    return recognizer


def big_jpeg() -> bytes:
    data = jpeg_bytes(size=(400, 400), quality=95)
    assert len(data) > LIMIT  # over the byte limit, well under the pixel limit
    return data


# Under Pillow's own bomb limit but over ours, and far over both (Pillow refuses to open it).
BOMBS = {"over our limit": png_claiming(2000, 2000), "over Pillow's": png_claiming(30000, 30000)}


def nothing_stored(media_root) -> None:
    assert media_files(media_root) == []
    assert not RecognitionJob.objects.exists() and not Member.objects.exists() and not PhotoUpload.objects.exists()


def test_upload_page(client, media_root):
    client.force_login(make_user("alice"))
    response = client.post(reverse("home"), {"photos": SimpleUploadedFile("big.jpg", big_jpeg())}, **XHR)
    error = response.json()["error"]
    assert response.status_code == 413 and error["code"] == "image_too_large" and "limit" in error["message"]
    for name, bomb in BOMBS.items():
        response = client.post(reverse("home"), {"photos": SimpleUploadedFile("bomb.png", bomb)}, **XHR)
        error = response.json()["error"]
        assert response.status_code == 413 and error["code"] == "image_too_large", name
        assert "pixels" in error["message"], (name, error)
    nothing_stored(media_root)


def test_enrolment_page(client, media_root):
    client.force_login(make_user("boss", is_staff=True))
    response = client.post(
        reverse("member-enrol"),
        {"display_name": "Eve", "mode": "average", "photos": [SimpleUploadedFile("big.jpg", big_jpeg())]},
    )
    assert response.status_code == 200
    assert f"big.jpg is {filesizeformat(len(big_jpeg()))}; the limit is 58.6 KB" in response.content.decode()
    for bomb in BOMBS.values():
        response = client.post(
            reverse("member-enrol"),
            {"display_name": "Eve", "mode": "average", "photos": [SimpleUploadedFile("bomb.png", bomb)]},
        )
        assert response.status_code == 200 and "bomb.png:" in response.content.decode()
        assert "pixels" in response.content.decode()
    nothing_stored(media_root)


def test_api(media_root, engine_with_limits):
    api = api_for(make_user("manager", perms=("add_member", "view_member")))
    for url, field in (("/api/v1/recognize", "image"), ("/api/v1/members", "photos")):
        extra = {"display_name": "Eve"} if field == "photos" else {}
        response = api.post(url, {field: SimpleUploadedFile("big.jpg", big_jpeg()), **extra}, format="multipart")
        assert response.status_code == 413 and response.json()["error"]["code"] == "image_too_large", url
        for name, bomb in BOMBS.items():
            response = api.post(url, {field: SimpleUploadedFile("bomb.png", bomb), **extra}, format="multipart")
            assert response.status_code == 413, (url, name, response.content)
            assert response.json()["error"]["code"] == "image_too_large"
    nothing_stored(media_root)


def test_member_services(media_root, engine_with_limits):
    for data in (big_jpeg(), *BOMBS.values()):
        with pytest.raises(InvalidImage) as caught:
            member_services.member_create(display_name="Eve", photos=[data])
        assert caught.value.outcomes[0].code == "image_too_large"
    nothing_stored(media_root)
