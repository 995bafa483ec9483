"""members.bulk: the worker side of a zip enrolment reports back and cleans up."""

from __future__ import annotations

import io
import zipfile

import pytest

from members import bulk
from members.models import Member
from tests.conftest import require_file


def _uploader():
    """The user a bulk enrolment acts for: the worker checks their permissions again."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user("uploader", password="pw-uploader-1")
    user.user_permissions.add(*Permission.objects.filter(codename__in=("add_member", "view_member")))
    return user


def _zip(entries: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    buffer.seek(0)
    return buffer


@pytest.mark.django_db
def test_bulk_run_enrols_records_done_and_is_idempotent(settings, media_root, real_recognizer):
    settings.CELERY_TASK_ALWAYS_EAGER = False  # run the worker's side by hand below
    photo = require_file("lfw/lfw-deepfunneled/Colin_Powell/Colin_Powell_0001.jpg").read_bytes()
    user = _uploader()
    bulk_id, record = bulk.bulk_create(user_id=user.pk, archive=_zip({"Colin_Powell/1.jpg": photo}))
    assert record["status"] == "queued" and record["people"] == 1
    done = bulk.bulk_run(bulk_id=bulk_id)
    assert done["status"] == "done" and done["summary"]
    assert Member.objects.filter(display_name__icontains="Colin").count() == 1
    assert not (media_root / "bulk" / bulk_id / "people").exists()
    # A redelivered task does nothing more.
    assert bulk.bulk_run(bulk_id=bulk_id)["status"] == "done"
    assert Member.objects.count() == 1
    assert bulk.bulk_get(bulk_id=bulk_id, user_id=user.pk)["status"] == "done"
    assert bulk.bulk_get(bulk_id=bulk_id, user_id=user.pk + 1) is None


@pytest.mark.django_db
def test_bulk_run_records_a_failure_with_its_reason(settings, media_root, monkeypatch, caplog):
    bulk_id, _ = bulk.bulk_create(user_id=_uploader().pk, archive=_zip({"Someone/1.jpg": b"not a photo"}))

    def broken(**kwargs):
        raise RuntimeError("disk on fire at /srv/secret")

    monkeypatch.setattr("members.services.folder_enroll", broken)
    failed = bulk.bulk_run(bulk_id=bulk_id)
    # The client learns that it failed; the server's words (paths) stay in the worker's log.
    assert failed["status"] == "failed" and "failed on the server" in failed["error"]
    assert "/srv/secret" not in failed["error"] and "disk on fire" in caplog.text


@pytest.mark.django_db
def test_bulk_run_fails_when_the_uploader_is_gone(settings, media_root):
    user = _uploader()
    bulk_id, _ = bulk.bulk_create(user_id=user.pk, archive=_zip({"Someone/1.jpg": b"not a photo"}))
    user.delete()
    failed = bulk.bulk_run(bulk_id=bulk_id)
    assert failed["status"] == "failed" and "no longer exists" in failed["error"]
    assert not Member.objects.exists()


def test_unknown_or_malformed_ids_are_none():
    assert bulk.bulk_get(bulk_id="../../etc", user_id=1) is None
    assert bulk.bulk_get(bulk_id="0" * 32, user_id=1) is None
