"""The pages: log in, upload, a job's page and status, history, members and enrolment (fake engine)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from members import services as member_services
from members.models import Member
from recognition.models import RecognitionJob
from tests.fakes import draw_photo, face_photo

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fake_threshold")]
XHR = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest", "HTTP_ACCEPT": "application/json"}


@pytest.fixture
def alice(client):
    user = get_user_model().objects.create_user("alice", password="pw-alice-123")
    client.force_login(user)
    return user


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_user("boss", password="pw-boss-123", is_staff=True)
    client.force_login(user)
    return user


def png(name="p.png", data=None):
    return SimpleUploadedFile(
        name, data or draw_photo([("red", (10, 10, 40, 50)), ("blue", (90, 20, 40, 50))]), content_type="image/png"
    )


def test_pages_need_a_login(client):
    for url in [reverse("home"), reverse("job-list"), reverse("member-list"), reverse("member-enrol")]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_log_in_and_out(client):
    get_user_model().objects.create_user("carol", password="pw-carol-123")
    page = client.get(reverse("login")).content.decode()
    assert 'for="id_username"' in page and 'for="id_password"' in page
    response = client.post(reverse("login"), {"username": "carol", "password": "pw-carol-123"})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert client.get(reverse("home")).status_code == 200
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("home")).status_code == 302


def test_upload_page_and_a_json_upload_that_runs(
    client, alice, fake_engine, eager_celery, django_capture_on_commit_callbacks
):
    page = client.get(reverse("home")).content.decode()
    assert 'id="id_photos"' in page and "multiple" in page and 'for="id_photos"' in page and "upload.js" in page
    member_services.member_create(display_name="Red Person", photos=[face_photo("red")])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("home"), {"photos": png()}, **XHR)
    assert response.status_code == 201
    job = RecognitionJob.objects.get(pk=response.json()["id"])
    assert response.json()["url"] == reverse("job-detail", args=[job.pk]) and job.user == alice
    status = client.get(reverse("job-status", args=[job.pk])).json()
    assert status["status"] == "done" and status["finished"] and len(status["faces"]) == 2
    assert sorted(f["member"] or "" for f in status["faces"]) == ["", "Red Person"]
    detail = client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert 'id="overlay"' in detail and "job.js" in detail and "Red Person" in detail
    photo = client.get(reverse("job-photo", args=[job.pk]))
    assert photo.status_code == 200 and b"".join(photo.streaming_content)[:4] == b"\x89PNG"
    history = client.get(reverse("job-list")).content.decode()
    assert reverse("job-detail", args=[job.pk]) in history


@pytest.mark.parametrize(
    "data, code, status", [(b"hello, not a photo", "unsupported_image_type", 415), (b"", "invalid_image", 400)]
)
def test_a_bad_upload_gets_a_clear_message(client, alice, data, code, status):
    response = client.post(reverse("home"), {"photos": SimpleUploadedFile("notes.txt", data)}, **XHR)
    assert response.status_code == status and response.json()["error"]["code"] == code
    assert "notes.txt" in response.json()["error"]["message"] or code == "invalid_image"
    assert RecognitionJob.objects.count() == 0


def test_the_form_without_script_queues_several_photos(client, alice, settings):
    settings.FACESITE_MAX_UPLOAD_BYTES = 5000
    big = SimpleUploadedFile("big.bmp", draw_photo(size=(200, 200), fmt="BMP"))
    response = client.post(reverse("home"), {"photos": [png("a.png"), png("b.png"), big]}, follow=True)
    text = response.content.decode()
    assert "2 photo(s) queued" in text and "big.bmp is 0.1 MB; the limit is 0.0 MB" in text
    assert RecognitionJob.objects.count() == 2


def test_someone_elses_job_is_not_found(client, alice):
    other = get_user_model().objects.create_user("bob", password="pw-bob-123")
    from recognition.services import job_create

    job = job_create(user=other, upload=png())
    for name in ["job-detail", "job-status", "job-photo"]:
        assert client.get(reverse(name, args=[job.pk])).status_code == 404


def test_a_failed_job_shows_why(client, alice):
    from recognition.services import job_create

    job = job_create(user=alice, upload=png())
    RecognitionJob.objects.filter(pk=job.pk).update(
        status="failed", error_code="interrupted", error_message="The job was interrupted 3 time(s)."
    )
    assert "The job was interrupted 3 time(s)." in client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert client.get(reverse("job-status", args=[job.pk])).json()["error"]["code"] == "interrupted"


def test_members_pages_and_enrolment_through_the_worker_task(
    client, staff, fake_engine, eager_celery, django_capture_on_commit_callbacks
):
    page = client.get(reverse("member-enrol")).content.decode()
    assert 'for="id_display_name"' in page and 'for="id_photos"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("member-enrol"),
            {
                "display_name": "Green Person",
                "mode": "average",
                "photos": [
                    SimpleUploadedFile("g1.png", face_photo("green")),
                    SimpleUploadedFile("g2.png", face_photo("green")),
                ],
            },
        )
    member = Member.objects.get(display_name="Green Person")
    assert response.status_code == 302 and response["Location"] == reverse("member-detail", args=[member.pk])
    assert member.faces.count() == 2 and member.uploads.filter(status="done").count() == 2
    listing = client.get(reverse("member-list")).content.decode()
    assert "Green Person" in listing and reverse("member-face-photo", args=[member.faces.first().pk]) in listing
    detail = client.get(reverse("member-detail", args=[member.pk])).content.decode()
    assert "2 photos" in detail
    assert all(reverse("member-face-photo", args=[f.pk]) in detail for f in member.faces.all())
    assert client.get(reverse("member-face-photo", args=[member.faces.first().pk])).status_code == 200
    # Replace, and refusing a file that is not a photo.
    response = client.post(
        reverse("member-enrol"),
        {"member": member.pk, "mode": "replace", "photos": [SimpleUploadedFile("x.txt", b"nope")]},
    )
    assert response.status_code == 200 and "x.txt: The file is not an image" in response.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("member-enrol"),
            {"member": member.pk, "mode": "replace", "photos": [SimpleUploadedFile("g3.png", face_photo("green"))]},
        )
    assert member.faces.count() == 1


def test_enrolment_is_for_staff_only(client, alice):
    assert client.get(reverse("member-enrol")).status_code == 302


def test_this_is_adds_an_unknown_face(client, staff, fake_engine, eager_celery, django_capture_on_commit_callbacks):
    from recognition.services import job_create, job_run

    blue = member_services.member_create(display_name="Blue Person").member
    job = job_create(user=staff, upload=png())
    job_run(job_id=job.pk)
    job.refresh_from_db()
    index = next(i for i, f in enumerate(job.result["faces"]) if f["box"][0] == 90.0)
    page = client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert "Blue Person" in page  # offered in the "this is…" choice
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("job-face-enrol", args=[job.pk, index]), {"member": blue.pk}, follow=True)
    assert "being added to Blue Person" in response.content.decode()
    assert blue.faces.count() == 1
