"""Snapshots and log pruning in one process (any database): the beat task, the retention, a
worker whose log entries were pruned rebuilds, a changes-only catch-up keeps the same index."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from members import selectors, services
from members.models import GalleryChange, GalleryLogHead
from members.snapshots import log_prune_behind_snapshots, oldest_snapshot_seq, snapshot_path, snapshot_write
from members.tasks import gallery_snapshot_task
from tests.fakes import FAKE_DIM, FAKE_MODEL, face_photo

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def snapshot_dir(tmp_path, settings):
    settings.FACESITE_GALLERY_SNAPSHOT_DIR = str(tmp_path)
    return tmp_path


def cached():
    return selectors.gallery_cached(model_name=FAKE_MODEL, dim=FAKE_DIM, match="template")


def test_beat_writes_the_active_model_s_snapshot():
    assert django_settings.CELERY_BEAT_SCHEDULE["members-gallery-snapshot"]["task"] == "members.gallery_snapshot"
    result = gallery_snapshot_task.apply().get()
    (written,) = result["snapshots"]
    assert written["model_name"] == "mobilefacenet" and written["dim"] == 192 and written["vectors"] == 0
    assert snapshot_path("mobilefacenet", 192, "template").exists()


def test_changes_are_applied_to_the_same_index_and_pruning_respects_retention(fake_engine, settings):
    red = services.member_create(display_name="Red", photos=[face_photo("red")]).member
    first = cached()
    blue = services.member_create(display_name="Blue", photos=[face_photo("blue")]).member
    second = cached()
    assert second.index is first.index and second.seq == first.seq + 1 and second.source == "database"
    assert sorted(second.index.labels) == [red.pk, blue.pk]
    snapshot_write(model_name=FAKE_MODEL, dim=FAKE_DIM, match="template")
    assert oldest_snapshot_seq() == second.seq
    # Within the retention nothing goes; past it, everything the snapshot covers does.
    settings.FACESITE_GALLERY_LOG_RETENTION_HOURS = 24
    assert log_prune_behind_snapshots() == 0
    settings.FACESITE_GALLERY_LOG_RETENTION_HOURS = 0
    assert log_prune_behind_snapshots() == 2
    assert not GalleryChange.objects.exists()
    assert GalleryLogHead.objects.get(pk=1).pruned_through == second.seq


def test_a_worker_behind_a_pruned_log_rebuilds(fake_engine, settings, snapshot_dir):
    red = services.member_create(display_name="Red", photos=[face_photo("red")]).member
    behind = cached()
    services.member_delete(member=red)
    green = services.member_create(display_name="Green", photos=[face_photo("green")]).member
    # Another process writes a snapshot and prunes the log past this one's position.
    GalleryChange.objects.filter(created_at__lte=timezone.now()).update(
        created_at=timezone.now() - timezone.timedelta(days=2)
    )
    selectors.clear_gallery_cache()
    snapshot_write(model_name=FAKE_MODEL, dim=FAKE_DIM, match="template")
    assert log_prune_behind_snapshots() == 3
    selectors._cache[(FAKE_MODEL, FAKE_DIM, "template")] = behind  # this process, still behind
    now = cached()
    assert now.index is not behind.index and now.index.labels == [green.pk]


def test_a_damaged_snapshot_is_ignored_for_pruning(fake_engine, snapshot_dir):
    services.member_create(display_name="Red", photos=[face_photo("red")])
    snapshot_write(model_name=FAKE_MODEL, dim=FAKE_DIM, match="template")
    (snapshot_dir / "gallery-other-8-template.snapshot").write_bytes(b"garbage")
    assert oldest_snapshot_seq() == cached().seq


def test_a_snapshot_of_another_backend_than_the_setting_is_not_loaded(fake_engine, settings):
    services.member_create(display_name="Red", photos=[face_photo("red")])
    snapshot_write(model_name=FAKE_MODEL, dim=FAKE_DIM, match="template")  # numpy, by size
    selectors.clear_gallery_cache()
    assert cached().source == "snapshot"
    selectors.clear_gallery_cache()
    settings.FACESITE_GALLERY = {**settings.FACESITE_GALLERY, "INDEX_BACKEND": "faiss"}
    now = cached()
    assert now.source == "database" and now.index.backend == "faiss"
