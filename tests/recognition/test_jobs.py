"""Recognition jobs: upload checks, the claim, idempotency, retries and results (fake engine)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from members import services as member_services
from recognition import selectors, services
from recognition.models import RecognitionJob
from tests.fakes import draw_photo, face_photo, stored_files

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fake_threshold")]


@pytest.fixture
def user():
    return get_user_model().objects.create_user("alice", password="pw-alice-123")


def upload(data: bytes, name: str = "group.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/png")


def test_create_queues_after_commit_and_runs(
    fake_engine, user, eager_celery, media_root, django_capture_on_commit_callbacks
):
    red = member_services.member_create(display_name="Red Person", photos=[face_photo("red")]).member
    photo = draw_photo([("red", (10, 10, 40, 50)), ("blue", (90, 20, 40, 50))])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = services.job_create(user=user, upload=upload(photo, "../../etc/passwd.png"))
    assert job.status == "queued" and len(callbacks) == 1  # nothing queued before the commit
    assert job.photo.name.startswith("jobs/") and "passwd" not in job.photo.name
    assert job.original_name == "passwd.png" and (job.image_width, job.image_height) == (160, 120)
    callbacks[0]()
    job.refresh_from_db()
    assert job.status == "done", job.error_message
    assert job.attempts == 1 and job.model_name == "fake-colour"
    result = selectors.job_result(job=job)
    faces = sorted(result["faces"], key=lambda f: f["box"][0])
    assert len(faces) == 2
    assert faces[0]["member_id"] == red.pk and faces[0]["member"] == "Red Person"
    assert faces[0]["similarity"] > 0.99
    assert faces[1]["member_id"] is None and faces[1]["member"] is None
    assert faces[0]["box"] == [10.0, 10.0, 40.0, 50.0] and len(faces[0]["landmarks"]) == 5
    assert set(result["timings"]) >= {"queued", "decode", "engine", "run", "total"}


@pytest.mark.parametrize(
    "data, code",
    [
        (b"%PDF-1.4 not a photo at all", "unsupported_image_type"),
        (b"", "invalid_image"),
        (face_photo("red")[:60], "invalid_image"),
    ],
)
def test_create_refuses_what_is_not_a_photo(user, media_root, data, code):
    with pytest.raises(services.UploadRejected) as info:
        services.job_create(user=user, upload=upload(data, "doc.png"))
    assert info.value.code == code and "doc.png" in info.value.message
    assert RecognitionJob.objects.count() == 0 and stored_files(media_root) == []


def test_create_refuses_a_file_over_the_limit(user, media_root, settings):
    settings.FACESITE_MAX_UPLOAD_BYTES = 1000
    with pytest.raises(services.UploadRejected) as info:
        services.job_create(user=user, upload=upload(draw_photo(size=(400, 400), fmt="BMP"), "big.bmp"))
    assert info.value.code == "image_too_large" and "limit" in info.value.message
    assert RecognitionJob.objects.count() == 0 and stored_files(media_root) == []


def make_job(user, photo: bytes | None = None, **fields) -> RecognitionJob:
    job = services.job_create(user=user, upload=upload(photo or face_photo("green")))
    if fields:
        RecognitionJob.objects.filter(pk=job.pk).update(**fields)
    return job


def test_a_second_delivery_does_nothing(fake_engine, user):
    job = make_job(user)
    assert services.job_run(job_id=job.pk).state == "done"
    before = RecognitionJob.objects.get(pk=job.pk)
    assert services.job_run(job_id=job.pk).state == "finished"
    after = RecognitionJob.objects.get(pk=job.pk)
    assert (after.attempts, after.result, after.finished_at) == (before.attempts, before.result, before.finished_at)


def test_a_fresh_claim_is_left_alone_and_a_stale_one_is_taken_over(fake_engine, user, settings):
    settings.FACESITE_JOB_STALE_AFTER = 60
    job = make_job(user, status="running", attempts=1, claimed_at=timezone.now() - timedelta(seconds=10))
    outcome = services.job_run(job_id=job.pk)
    assert outcome.state == "busy" and 45 < outcome.retry_in < 55
    RecognitionJob.objects.filter(pk=job.pk).update(claimed_at=timezone.now() - timedelta(seconds=61))
    assert services.job_run(job_id=job.pk).state == "done"
    job.refresh_from_db()
    assert job.status == "done" and job.attempts == 2 and len(job.result["faces"]) == 1


def test_after_the_last_attempt_an_interrupted_job_fails_with_the_reason(fake_engine, user, settings):
    settings.FACESITE_JOB_MAX_ATTEMPTS, settings.FACESITE_JOB_STALE_AFTER = 3, 60
    job = make_job(user, status="running", attempts=3, claimed_at=timezone.now() - timedelta(seconds=100))
    assert services.job_run(job_id=job.pk).state == "failed"
    job.refresh_from_db()
    assert job.status == "failed" and job.error_code == "interrupted"
    assert "interrupted 3 time(s)" in job.error_message and job.result is None


def test_an_old_run_cannot_overwrite_a_newer_claim(fake_engine, user, monkeypatch):
    job = make_job(user)
    real = member_services.identify

    def taken_over(**kwargs):
        # While this run works, the job is given up on and claimed again by someone else.
        RecognitionJob.objects.filter(pk=job.pk).update(attempts=2)
        return real(**kwargs)

    monkeypatch.setattr(member_services, "identify", taken_over)
    assert services.job_run(job_id=job.pk).state == "superseded"
    job.refresh_from_db()
    assert job.status == "running" and job.result is None


def test_an_engine_error_fails_the_job_with_its_code(fake_engine, user, media_root):
    job = make_job(user)
    (media_root / job.photo.name).write_bytes(b"garbage now")
    assert services.job_run(job_id=job.pk).state == "failed"
    job.refresh_from_db()
    assert job.status == "failed" and job.error_code == "unsupported_image_type" and job.error_message


def test_a_missing_job_is_skipped():
    assert services.job_run(job_id=987654).state == "gone"


def test_users_see_only_their_own_jobs(user):
    other = get_user_model().objects.create_user("bob", password="pw-bob-123")
    mine, theirs = make_job(user), make_job(other)
    assert list(selectors.job_list_for_user(user=user)) == [mine]
    assert selectors.job_get_for_user(user=user, job_id=theirs.pk) is None
    assert selectors.job_get_for_user(user=user, job_id=mine.pk) == mine
    admin = get_user_model().objects.create_superuser("root", password="pw-root-123")
    assert selectors.job_get_for_user(user=admin, job_id=theirs.pk) == theirs


def test_an_unknown_face_goes_to_a_member_through_the_enrolment_task(
    fake_engine, user, eager_celery, django_capture_on_commit_callbacks
):
    member = member_services.member_create(display_name="Blue Person").member
    job = make_job(user, draw_photo([("blue", (100, 30, 40, 50)), ("red", (10, 10, 30, 30))]))
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    index = next(i for i, f in enumerate(job.result["faces"]) if f["box"][0] == 100.0)
    with django_capture_on_commit_callbacks(execute=True):
        uploads = services.job_face_enrol(job=job, face_index=index, member=member)
    uploads[0].refresh_from_db()
    assert uploads[0].status == "done", uploads[0].message
    assert member.faces.count() == 1
