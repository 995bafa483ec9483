"""Retention of unknown faces: old ones (vectors and crops) go, nothing else does; deleting a job
takes its faces out of their clusters (fake engine: plumbing)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from members import services as member_services
from members.models import Member
from recognition.models import RecognitionJob, UnknownCluster, UnknownFace
from recognition.services import job_create, job_delete
from recognition.unknowns import unknown_faces_purge
from tests.fakes import draw_photo, face_photo

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fake_threshold", "fake_engine", "eager_celery")]

RED, GREEN = ("red", (10, 10, 40, 50)), ("green", (90, 20, 40, 50))


def _run(faces, capture) -> RecognitionJob:
    with capture(execute=True):
        job = job_create(user=None, upload=SimpleUploadedFile("p.png", draw_photo(faces), content_type="image/png"))
    job.refresh_from_db()
    return job


def _crop_path(face: UnknownFace):
    return settings.MEDIA_ROOT / face.crop.name


def test_retention_deletes_old_unknown_faces_and_their_crops_only(
    media_root, settings, django_capture_on_commit_callbacks
):
    settings.FACESITE_UNKNOWN_RETENTION_DAYS = 30
    member = member_services.member_create(display_name="Blue", photos=[face_photo("blue")]).member
    old_jobs = [_run([RED, GREEN], django_capture_on_commit_callbacks) for _ in range(2)]
    new_job = _run([RED, ("blue", (50, 60, 30, 40))], django_capture_on_commit_callbacks)
    old = UnknownFace.objects.filter(job__in=old_jobs)
    assert old.count() == 4 and UnknownFace.objects.filter(job=new_job).count() == 1  # blue is known
    old_crops = [_crop_path(f) for f in old]
    assert all(p.is_file() for p in old_crops)
    old.update(created_at=timezone.now() - timedelta(days=31))
    kept = UnknownFace.objects.get(job=new_job)
    red = UnknownCluster.objects.get(faces=kept)
    assert red.size == 3

    with django_capture_on_commit_callbacks(execute=True):
        report = unknown_faces_purge()
    assert report.deleted == 4
    assert not any(p.exists() for p in old_crops)
    assert list(UnknownFace.objects.all()) == [kept] and _crop_path(kept).is_file()
    # The red cluster keeps its newer face; the green one, all of whose faces were old, is gone.
    red.refresh_from_db()
    assert red.size == 1 and red.representative_id == kept.pk
    assert UnknownCluster.objects.count() == 1
    # Nothing else: the jobs, their photos and results, the member and its faces.
    assert RecognitionJob.objects.count() == 3
    for job in [*old_jobs, new_job]:
        job.refresh_from_db()
        assert (settings.MEDIA_ROOT / job.photo.name).is_file() and len(job.result["faces"]) == 2
    assert Member.objects.get(pk=member.pk).faces.count() == 1


def test_retention_zero_keeps_everything(settings, django_capture_on_commit_callbacks):
    _run([RED], django_capture_on_commit_callbacks)
    UnknownFace.objects.update(created_at=timezone.now() - timedelta(days=3650))
    assert unknown_faces_purge(days=0).deleted == 0
    assert UnknownFace.objects.count() == 1


def test_the_command_and_the_beat_schedule(settings, django_capture_on_commit_callbacks, capsys):
    _run([RED], django_capture_on_commit_callbacks)
    UnknownFace.objects.update(created_at=timezone.now() - timedelta(days=8))
    with django_capture_on_commit_callbacks(execute=True):
        call_command("purge_unknown_faces", "--days", "10")
        assert UnknownFace.objects.count() == 1
        call_command("purge_unknown_faces", "--days", "7")
    assert UnknownFace.objects.count() == 0
    assert "Deleted 1 unknown face(s)" in capsys.readouterr().out
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "recognition.tasks.purge_unknown_faces" in tasks
    from facesite.celery import app

    assert "recognition.tasks.purge_unknown_faces" in app.tasks


def test_deleting_a_job_takes_its_faces_out_of_their_clusters(media_root, django_capture_on_commit_callbacks):
    jobs = [_run([RED, GREEN], django_capture_on_commit_callbacks) for _ in range(3)]
    assert sorted(c.size for c in UnknownCluster.objects.all()) == [3, 3]
    doomed = UnknownFace.objects.filter(job=jobs[0])
    crops = [_crop_path(f) for f in doomed]
    represented = set(UnknownCluster.objects.values_list("representative_id", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        job_delete(job=jobs[0])
    assert not any(p.exists() for p in crops)
    assert sorted(c.size for c in UnknownCluster.objects.all()) == [2, 2]
    for cluster in UnknownCluster.objects.all():
        assert cluster.representative is not None and cluster.representative.job_id != jobs[0].pk
    assert represented  # every cluster had one before
    # The last photos of a stranger gone: so is the cluster.
    with django_capture_on_commit_callbacks(execute=True):
        job_delete(job=jobs[1])
        job_delete(job=jobs[2])
    assert not UnknownCluster.objects.exists() and not UnknownFace.objects.exists()
