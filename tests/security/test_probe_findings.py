"""The findings of the independent probe (issue 17), one test (or a few) per finding. Each
failed on the code before the fix: bulk enrolment as a privilege escalation, deep JSON as a 500,
server paths in zip errors and bulk status, unbounded page uploads, 16-bit PNGs clipped, verify
as an oracle on members, and the smaller ones."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from members import services as member_services
from members.errors import PermissionRefused
from members.models import Member, Template
from recognition.models import RecognitionJob
from tests.conftest import require_file
from tests.fakes import face_photo

from .conftest import PASSWORD, api_for, make_user, png_claiming

pytestmark = pytest.mark.django_db

MEMBERS = "/api/v1/members"
XHR = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest", "HTTP_ACCEPT": "application/json"}


def make_zip(entries: list[tuple[str, bytes]]) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    buffer.seek(0)
    buffer.name = "people.zip"
    return buffer


def template_bytes(member_id: int) -> bytes:
    return bytes(Template.objects.get(member_id=member_id).vector)


@pytest.fixture
def victim(fake_engine):
    return member_services.member_create(
        display_name="Victim", external_id="victim-7", photos=[face_photo("red")]
    ).member


# ------------------------------------------------------------------------------- 1. bulk escalation


@pytest.mark.parametrize("on_existing", ["replace", "add"])
def test_an_add_only_user_cannot_change_members_through_bulk(
    on_existing, victim, eager_celery, django_capture_on_commit_callbacks, media_root
):
    before = template_bytes(victim.pk)
    attacker = api_for(make_user("adder", perms=("add_member",)))
    archive = make_zip([("victim-7/me.png", face_photo("blue"))])
    with django_capture_on_commit_callbacks(execute=True):
        response = attacker.post(
            f"{MEMBERS}/bulk", {"archive": archive, "on_existing": on_existing}, format="multipart"
        )
    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "permission_denied"
    assert template_bytes(victim.pk) == before  # the victim's template is untouched
    assert not (media_root / "bulk").exists() or not any((media_root / "bulk").iterdir())  # nothing unpacked


def test_an_add_only_user_learns_nothing_about_existing_ids(victim, eager_celery, django_capture_on_commit_callbacks):
    attacker = api_for(make_user("adder", perms=("add_member",)))
    answers = []
    for external_id in ("victim-7", "nobody-here"):
        archive = make_zip([(f"{external_id}/me.png", face_photo("blue"))])
        with django_capture_on_commit_callbacks(execute=True):
            response = attacker.post(f"{MEMBERS}/bulk", {"archive": archive}, format="multipart")
        answers.append((response.status_code, response.json()))
    assert answers[0] == answers[1]  # the same answer whether the id exists or not
    assert answers[0][0] == 403
    assert Member.objects.count() == 1


def test_a_member_manager_may_still_replace_through_bulk(victim, eager_celery, django_capture_on_commit_callbacks):
    before = template_bytes(victim.pk)
    manager = api_for(make_user("boss", perms=("add_member", "view_member", "change_member")))
    archive = make_zip([("victim-7/new.png", face_photo("green"))])
    with django_capture_on_commit_callbacks(execute=True):
        response = manager.post(f"{MEMBERS}/bulk", {"archive": archive, "on_existing": "replace"}, format="multipart")
    assert response.status_code == 202, response.content
    status = manager.get(response.json()["url"]).json()
    assert status["status"] == "done" and status["summary"]["members_updated"] == 1
    assert template_bytes(victim.pk) != before


def test_the_worker_checks_the_permission_again(victim, eager_celery, django_capture_on_commit_callbacks):
    """Taken away between the upload and the worker's run: the worker refuses too."""
    before = template_bytes(victim.pk)
    user = make_user("boss", perms=("add_member", "view_member", "change_member"))
    client = api_for(user)
    archive = make_zip([("victim-7/new.png", face_photo("green"))])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(f"{MEMBERS}/bulk", {"archive": archive, "on_existing": "replace"}, format="multipart")
    assert response.status_code == 202
    user.user_permissions.remove(Permission.objects.get(codename="change_member"))
    for callback in callbacks:
        callback()
    status = client.get(response.json()["url"]).json()
    assert status["status"] == "failed" and "change_member" in status["error"]
    assert template_bytes(victim.pk) == before


def test_the_folder_service_refuses_an_actor_without_change_member(victim, tmp_path):
    (tmp_path / "victim-7").mkdir()
    (tmp_path / "victim-7" / "x.png").write_bytes(face_photo("blue"))
    adder = make_user("adder", perms=("add_member", "view_member"))
    before = template_bytes(victim.pk)
    with pytest.raises(PermissionRefused):
        member_services.folder_enroll(root=tmp_path, on_existing="replace", actor=adder)
    assert template_bytes(victim.pk) == before
    # The operator's shell (no actor) may, as manage.py enroll_folder does.
    summary = member_services.folder_enroll(root=tmp_path, on_existing="replace")
    assert summary.members_updated == 1 and template_bytes(victim.pk) != before


# ------------------------------------------------------------------------------- 2. deep JSON


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deeply_nested_json_is_a_400(depth, victim):
    client = api_for(make_user("boss", perms=("add_member", "view_member", "change_member")))
    nested = "[" * depth + "]" * depth
    for method, url, field in (
        ("post", "/api/v1/detect", "image"),
        ("post", MEMBERS, "display_name"),
        ("patch", f"{MEMBERS}/{victim.pk}", "display_name"),
    ):
        body = f'{{"{field}": {nested}}}'
        response = getattr(client, method)(url, body, content_type="application/json")
        assert response.status_code == 400, (url, depth, response.content[:200])
        assert response.json()["error"]["code"] == "malformed_request"


# ------------------------------------------------------------------------------- 3. server paths


def no_server_path(text: str) -> None:
    assert str(django_settings.MEDIA_ROOT) not in text
    assert "/tmp" not in text and "Errno" not in text, text


@pytest.mark.parametrize(
    "entries",
    [
        [("Bob/1.png", b"one"), ("Bob/1.png", b"two")],  # the same entry twice
        [("Bob/" + "n" * 300 + ".png", b"long")],  # a name the file system refuses
    ],
    ids=["duplicate entry", "long name"],
)
def test_zip_errors_name_no_server_path(entries, media_root):
    client = api_for(make_user("boss", perms=("add_member", "view_member")))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        archive = make_zip(entries)
    response = client.post(f"{MEMBERS}/bulk", {"archive": archive}, format="multipart")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_zip"
    no_server_path(response.content.decode())
    assert not [p for p in media_root.rglob("*") if p.is_file()]


def test_bulk_status_names_no_server_path(fake_engine, eager_celery, django_capture_on_commit_callbacks):
    client = api_for(make_user("boss", perms=("add_member", "view_member")))
    archive = make_zip([("Bob/1.png", face_photo("red")), ("Bob/2.txt", b"not a photo")])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{MEMBERS}/bulk", {"archive": archive}, format="multipart")
    status = client.get(response.json()["url"])
    body = status.json()
    assert body["status"] == "done" and body["summary"]["members_created"] == 1
    assert "root" not in body["summary"]
    no_server_path(status.content.decode())


# ------------------------------------------------------------------------------- 4. page uploads


@pytest.mark.parametrize("url_name", ["home", "member-enrol"])
def test_a_page_upload_with_a_huge_declared_length_is_refused_at_once(url_name, client):
    client.force_login(make_user("boss", is_staff=True))
    # The body is empty: a server that read it on would fail or wait; this one never reads it.
    response = client.generic(
        "POST", reverse(url_name), b"", content_type="multipart/form-data; boundary=x", CONTENT_LENGTH="2147483648"
    )
    assert response.status_code == 413
    assert not RecognitionJob.objects.exists()
    response = client.post(
        reverse(url_name), b"", content_type="multipart/form-data; boundary=x", CONTENT_LENGTH="2147483648", **XHR
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"


def test_a_page_upload_under_the_limit_still_works(
    client, settings, fake_engine, eager_celery, django_capture_on_commit_callbacks
):
    settings.FACESITE_PAGE_MAX_REQUEST_BYTES = 10_000_000
    client.force_login(make_user("alice"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("home"), {"photos": SimpleUploadedFile("a.png", face_photo("red"))}, **XHR)
    assert response.status_code == 201


# ------------------------------------------------------------------------------- 5. 16-bit images


def test_a_16_bit_png_of_a_real_face_is_found_like_its_8_bit_copy(recognizer):
    from PIL import Image

    photo = require_file("lfw/lfw-deepfunneled/Colin_Powell/Colin_Powell_0001.jpg")
    grey = np.asarray(Image.open(photo).convert("L"))
    copies = {}
    for bits, samples in ((8, grey), (16, grey.astype(np.uint16) * 257)):
        buffer = io.BytesIO()
        Image.fromarray(samples).save(buffer, format="PNG")
        copies[bits] = buffer.getvalue()
    assert Image.open(io.BytesIO(copies[16])).mode.startswith("I;16")
    faces = {bits: recognizer.detect(recognizer.load(data)) for bits, data in copies.items()}
    assert len(faces[8]) == 1 and len(faces[16]) == 1
    assert np.allclose(faces[8][0].box, faces[16][0].box, atol=1.0)


@pytest.mark.parametrize("mode", ["I", "F"])
def test_32_bit_integer_and_float_images_are_scaled_not_clipped(mode):
    from PIL import Image

    from faceengine.images import load_image

    ramp = np.tile(np.linspace(0, 1, 64), (16, 1))
    samples = (ramp * 65535).astype(np.int32) if mode == "I" else ramp.astype(np.float32)
    buffer = io.BytesIO()
    Image.fromarray(samples, mode=mode).save(buffer, format="TIFF")
    rgb = load_image(buffer.getvalue())
    row = rgb[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255 and np.all(np.diff(row) >= 0)
    assert 120 <= row[32] <= 135  # the middle of the ramp is mid-grey, not white


# ------------------------------------------------------------------------------- 6. verify oracle


def test_verify_against_a_member_needs_the_view_permission(victim):
    reader = api_for(make_user("reader"))
    photo = base64.b64encode(face_photo("red")).decode()
    for member_id in (victim.pk, 987654):  # an existing member and an unknown one: the same answer
        response = reader.post("/api/v1/verify", {"image": photo, "member_id": member_id}, format="json")
        assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    viewer = api_for(make_user("viewer", perms=("view_member",)))
    response = viewer.post("/api/v1/verify", {"image": photo, "member_id": victim.pk}, format="json")
    assert response.status_code == 200 and response.json()["same_person"] is True
    assert viewer.post("/api/v1/verify", {"image": photo, "member_id": 987654}, format="json").status_code == 404
    # Two photos with each other stay open to any token.
    response = reader.post("/api/v1/verify", {"image": photo, "image2": photo}, format="json")
    assert response.status_code == 200


# ------------------------------------------------------------------------------- 7. smaller ones


def test_the_bomb_message_quotes_the_configured_limit():
    from faceengine.errors import ImageTooLarge
    from faceengine.images import ImageLimits, load_image

    with pytest.raises(ImageTooLarge) as error:
        load_image(png_claiming(30000, 30000), ImageLimits(max_pixels=12_345_678))
    assert "12345678" in str(error.value) and "178956970" not in str(error.value)


def test_base64_with_line_breaks_is_accepted(fake_engine):
    client = api_for(make_user("reader"))
    wrapped = base64.encodebytes(face_photo("red", size=(400, 300))).decode()
    assert "\n" in wrapped.strip()
    response = client.post("/api/v1/detect", {"image": wrapped}, format="json")
    assert response.status_code == 200, response.content
    assert len(response.json()["faces"]) == 1


def test_the_face_delete_error_names_the_id_asked_for(victim):
    client = api_for(make_user("boss", perms=("view_member", "change_member")))
    response = client.delete(f"{MEMBERS}/{victim.pk}/faces/99999999999999999999")
    message = response.json()["error"]["message"]
    assert response.status_code == 404 and "None" not in message and "99999999999999999999" in message


def test_the_page_json_upload_answers_413_for_a_photo_too_large(client, settings):
    settings.FACESITE_MAX_UPLOAD_BYTES = 1000
    client.force_login(make_user("alice"))
    response = client.post(reverse("home"), {"photos": SimpleUploadedFile("big.png", b"x" * 5000)}, **XHR)
    assert response.status_code == 413 and response.json()["error"]["code"] == "image_too_large"


def test_the_login_429_says_when_to_come_back(settings):
    from django.test import Client

    settings.LOGIN_THROTTLE_ATTEMPTS, settings.LOGIN_THROTTLE_WINDOW = 2, 600
    make_user("alice")
    for guess in ("a", "b"):
        Client().post(reverse("login"), {"username": "alice", "password": guess})
    response = Client().post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 600


@pytest.mark.parametrize("value", [42, True, ["x"], {"a": 1}])
def test_a_display_name_that_is_not_a_string_is_refused(value):
    client = api_for(make_user("boss", perms=("add_member",)))
    response = client.post(MEMBERS, json.dumps({"display_name": value}), content_type="application/json")
    assert response.status_code == 400 and "display_name" in response.json()["error"]["message"]
    assert not Member.objects.exists()


def test_external_ids_compare_case_insensitively_on_every_database():
    client = api_for(make_user("boss", perms=("add_member", "change_member", "view_member")))
    assert client.post(MEMBERS, {"display_name": "A", "external_id": "E17"}, format="json").status_code == 201
    response = client.post(MEMBERS, {"display_name": "B", "external_id": "e17"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "duplicate_external_id"
    other = client.post(MEMBERS, {"display_name": "C", "external_id": "X1"}, format="json").json()["member"]
    response = client.patch(f"{MEMBERS}/{other['id']}", {"external_id": "e17"}, format="json")
    assert response.status_code == 409
    found = client.get(MEMBERS, {"search": "e17"}).json()["results"]
    assert [m["external_id"] for m in found] == ["E17"]


def test_the_enrol_page_gives_one_error_for_a_too_long_name(client):
    client.force_login(make_user("boss", is_staff=True))
    response = client.post(
        reverse("member-enrol"),
        {"display_name": "x" * 201, "mode": "average", "photos": [SimpleUploadedFile("a.png", face_photo("red"))]},
    )
    page = response.content.decode()
    assert response.status_code == 200 and "at most 200 characters" in page
    assert "Give the new member" not in page
