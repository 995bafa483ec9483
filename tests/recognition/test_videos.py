"""Videos: POST /api/v1/videos and GET /api/v1/videos/{id} on an mp4 written by the test from
LFW photos (two enrolled members and a stranger, real engine), the bad inputs, and the job's
guarantees (cancellation, a superseded run writes nothing, a second delivery does nothing)."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from recognition.models import UnknownCluster, UnknownFace, VideoAppearance, VideoJob
from tests.fakes import face_photo, lfw_photos, stored_files

FPS = 10
SIZE = (640, 480)
SEGMENT_S = 3.0
STEP = 1 / 5  # FACESITE_VIDEO_SAMPLE_FPS

pytestmark = [pytest.mark.django_db]


def write_video(path: Path, segments: list[tuple[np.ndarray | None, int, float]], fps: int = FPS) -> Path:
    """An mp4 (MPEG-4 part 2) of ``segments``: (RGB photo or None for an empty frame, x, seconds)."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, SIZE)
    assert writer.isOpened(), "OpenCV cannot write mp4 here"
    for photo, x, seconds in segments:
        frame = np.full((SIZE[1], SIZE[0], 3), 70, np.uint8)
        if photo is not None:
            h, w = photo.shape[:2]
            frame[115 : 115 + h, x : x + w] = photo[:, :, ::-1]
        for _ in range(round(seconds * fps)):
            writer.write(frame)
    writer.release()
    return path


@pytest.fixture
def user():
    return get_user_model().objects.create_user("vera", password="pw-vera-12345")


@pytest.fixture
def client(user):
    api = APIClient()
    api.force_authenticate(user)
    return api


def _post(client, path: Path | None = None, *, data: bytes | None = None, name: str = "clip.mp4"):
    content = data if data is not None else path.read_bytes()  # type: ignore[union-attr]
    upload = SimpleUploadedFile(name, content, content_type="video/mp4")
    return client.post("/api/v1/videos", {"video": upload}, format="multipart")


@pytest.fixture
def people(lfw_dir, real_recognizer):
    """Two enrolled members and a stranger: (name, photo to show) each."""
    from faceengine.images import load_image
    from members.services import member_create

    shown = {}
    for folder, name in (("Colin_Powell", "Colin Powell"), ("Tony_Blair", "Tony Blair")):
        photos = lfw_photos(lfw_dir, folder)
        member_create(display_name=name, photos=photos[:5])
        shown[name] = load_image(photos[8])
    shown["stranger"] = load_image(lfw_photos(lfw_dir, "Gerhard_Schroeder")[0])
    return shown


@pytest.mark.slow
def test_a_video_of_two_members_and_a_stranger(
    client, people, tmp_path, eager_celery, django_capture_on_commit_callbacks
):
    # Each person for three seconds, each at another place in the frame (as people come and go).
    path = write_video(
        tmp_path / "three.mp4",
        [
            (people["Colin Powell"], 20, SEGMENT_S),
            (people["Tony Blair"], 370, SEGMENT_S),
            (people["stranger"], 195, SEGMENT_S),
        ],
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, path)
    assert response.status_code == 202, response.json()
    video_id = response.json()["id"]

    body = client.get(f"/api/v1/videos/{video_id}").json()
    assert body["status"] == "done", body["error"]
    assert body["duration_s"] == pytest.approx(3 * SEGMENT_S, abs=0.11)
    assert body["frames_processed"] == body["frames_total"] == 45 and body["truncated"] is False
    names = [(a["member"], a["start_s"], a["end_s"]) for a in body["appearances"]]
    assert [n for n, _, _ in names] == ["Colin Powell", "Tony Blair"]
    for (_, start, end), expected_start in zip(names, (0.0, SEGMENT_S), strict=True):
        assert abs(start - expected_start) <= STEP + 1e-6
        assert abs(end - (expected_start + SEGMENT_S)) <= STEP + 1e-6
    assert all(a["best_similarity"] > 0.3 and a["member_id"] for a in body["appearances"])
    assert len(body["unknown_tracks"]) == 1
    stranger = body["unknown_tracks"][0]
    assert stranger["member_id"] is None
    assert abs(stranger["start_s"] - 2 * SEGMENT_S) <= STEP + 1e-6
    assert abs(stranger["end_s"] - 3 * SEGMENT_S) <= STEP + 1e-6
    # The thumbnails are JPEGs of the faces, for the owner.
    thumb = client.get(body["appearances"][0]["thumbnail"])
    assert thumb.status_code == 200 and b"".join(thumb.streaming_content)[:3] == b"\xff\xd8\xff"
    # Somebody else sees no such video.
    other = APIClient()
    other.force_authenticate(get_user_model().objects.create_user("mallory", password="pw-mallory-1"))
    assert other.get(f"/api/v1/videos/{video_id}").status_code == 404


@pytest.mark.slow
def test_a_strangers_video_appearance_joins_their_photos_cluster_and_naming_it_enrols_the_frame(
    client, user, people, lfw_dir, tmp_path, eager_celery, django_capture_on_commit_callbacks
):
    from members.models import Member
    from recognition import unknown_selectors
    from recognition.services import job_create
    from recognition.unknowns import cluster_assign

    # The stranger in three photo jobs first: their unknown faces make a cluster.
    for photo in lfw_photos(lfw_dir, "Gerhard_Schroeder")[:3]:
        with django_capture_on_commit_callbacks(execute=True):
            job_create(user=user, upload=SimpleUploadedFile(photo.name, photo.read_bytes(), content_type="image/jpeg"))
    # Then a video of a member and the stranger.
    path = write_video(tmp_path / "visit.mp4", [(people["Colin Powell"], 20, 2.0), (people["stranger"], 195, 3.0)])
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, path)
    video_id = response.json()["id"]
    assert client.get(f"/api/v1/videos/{video_id}").json()["status"] == "done"

    seen = UnknownFace.objects.get(video_id=video_id)
    assert seen.job_id is None and seen.face_index == 1 and seen.crop.name
    assert seen.cluster is not None, "the video's stranger was not clustered"
    cluster = seen.cluster
    assert UnknownFace.objects.filter(cluster=cluster, job__isnull=False).count() >= 2  # with their photos
    staff = get_user_model().objects.create_superuser("boss", password="pw-boss-12345")
    staff_api = APIClient()
    staff_api.force_authenticate(staff)
    listed = staff_api.get(f"/api/v1/unknown-clusters/{cluster.pk}").json()
    assert {"video_id": video_id, "job_id": None} in [
        {"video_id": f["video_id"], "job_id": f["job_id"]} for f in listed["faces"]
    ]

    from django.test import Client
    from django.urls import reverse

    pages = Client()
    pages.force_login(staff)
    page = pages.get(reverse("unknown-list")).content.decode()
    assert f'href="{reverse("video-detail", args=[video_id])}"' in page
    assert f"Unknown person 2 of video {video_id}" in page
    crop = pages.get(reverse("unknown-face-crop", args=[seen.pk]))
    assert crop.status_code == 200 and b"".join(crop.streaming_content)[:3] == b"\xff\xd8\xff"

    # Naming the cluster enrols every face, the video's best frame among them.
    size = cluster.size
    with django_capture_on_commit_callbacks(execute=True):
        named = cluster_assign(cluster=cluster, display_name="Gerhard Schroeder", actor=staff)
    assert named.faces_sent == size
    assert Member.objects.get(pk=named.member.pk).faces.count() == size
    assert not UnknownFace.objects.filter(pk=seen.pk).exists()

    # Where does Colin Powell appear: in the video, from its start.
    powell = Member.objects.get(display_name="Colin Powell")
    rows = staff_api.get(f"/api/v1/members/{powell.pk}/appearances").json()["results"]
    assert rows[0]["video_id"] == video_id and rows[0]["job_id"] is None
    assert rows[0]["start_s"] == 0.0 and abs(rows[0]["end_s"] - 2.0) <= STEP + 1e-6
    assert rows == unknown_selectors.member_appearances(member_id=powell.pk)
    page = pages.get(reverse("member-detail", args=[powell.pk])).content.decode()
    assert f"video #{video_id}" in page and f"0.0–{rows[0]['end_s']:.1f} s" in page


@pytest.mark.slow
def test_a_video_is_done_even_when_its_unknown_people_cannot_be_kept(
    client, people, tmp_path, eager_celery, django_capture_on_commit_callbacks, monkeypatch
):
    from recognition import videos

    def disk_full(**_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(videos, "unknown_video_faces_store", disk_full)
    path = write_video(tmp_path / "stranger.mp4", [(people["stranger"], 195, 2.0)])
    with django_capture_on_commit_callbacks(execute=True):
        video_id = _post(client, path).json()["id"]
    body = client.get(f"/api/v1/videos/{video_id}").json()
    assert body["status"] == "done" and len(body["unknown_tracks"]) == 1
    assert not UnknownFace.objects.exists()


def test_deleting_a_video_takes_its_unknown_people_out_of_their_clusters(
    user, tmp_path, media_root, django_capture_on_commit_callbacks
):
    from django.core.files.base import ContentFile

    from recognition import videos

    data = write_video(tmp_path / "gone.mp4", [(None, 0, 1.0)]).read_bytes()
    with django_capture_on_commit_callbacks(execute=False):  # queued, never run
        job = videos.video_create(user=user, upload=SimpleUploadedFile("gone.mp4", data))
    cluster = UnknownCluster.objects.create(model_name="m", dim=2, size=1)
    face = UnknownFace(video=job, face_index=0, box=[0, 0, 9, 9], model_name="m", dim=2, cluster=cluster)
    face.vector = np.ones(2, "<f4").tobytes()
    face.crop.save("face.jpg", ContentFile(b"\xff\xd8\xff"), save=True)
    assert len(stored_files(media_root)) == 2  # the video and the crop
    with django_capture_on_commit_callbacks(execute=True):
        videos.video_delete(video=job)
    assert not UnknownFace.objects.exists() and not UnknownCluster.objects.exists()
    assert stored_files(media_root) == []


@pytest.mark.slow
def test_a_video_without_faces_fails_with_the_reason(
    client, real_recognizer, tmp_path, eager_celery, django_capture_on_commit_callbacks
):
    path = write_video(tmp_path / "empty.mp4", [(None, 0, 2.0)])
    with django_capture_on_commit_callbacks(execute=True):
        video_id = _post(client, path).json()["id"]
    body = client.get(f"/api/v1/videos/{video_id}").json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "no_face" and "10 frames" in body["error"]["message"]


# ------------------------------------------------------------------------------- bad input


def test_bad_inputs_are_refused_before_any_job(client, tmp_path, settings, media_root):
    good = write_video(tmp_path / "good.mp4", [(None, 0, 1.0)]).read_bytes()
    cases = [
        (b"", "invalid_video", 400),
        (b"just some words, not a video at all", "unsupported_video_type", 415),
        (face_photo("red"), "unsupported_video_type", 415),
        (good[: len(good) // 2], "invalid_video", 400),  # truncated: its index (moov) is at the end
        (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200, "invalid_video", 400),  # the magic alone
    ]
    for data, code, status in cases:
        response = _post(client, data=data)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), data[:20]
    settings.FACESITE_MAX_VIDEO_BYTES = 1000
    response = _post(client, data=good)
    assert response.status_code == 413
    assert VideoJob.objects.count() == 0
    assert stored_files(media_root) == []  # nothing kept of any of them


def test_a_video_over_the_length_limit_is_refused(client, tmp_path, settings, media_root):
    settings.FACESITE_MAX_VIDEO_SECONDS = 1
    response = _post(client, write_video(tmp_path / "long.mp4", [(None, 0, 2.0)]))
    assert response.status_code == 413 and "limit is 1 s" in response.json()["error"]["message"]
    assert stored_files(media_root) == []


# ------------------------------------------------------------------------------- the job


@pytest.fixture
def one_face_video(people, tmp_path) -> Path:
    return write_video(tmp_path / "one.mp4", [(people["Colin Powell"], 100, 2.0)])


def _create(user, path: Path, django_capture_on_commit_callbacks) -> VideoJob:
    from recognition import videos

    with django_capture_on_commit_callbacks(execute=False):  # queued, not run
        return videos.video_create(user=user, upload=SimpleUploadedFile("one.mp4", path.read_bytes()))


@pytest.mark.slow
def test_cancelled_while_queued_or_while_running(user, one_face_video, monkeypatch, django_capture_on_commit_callbacks):
    from recognition import tracked, videos

    queued = _create(user, one_face_video, django_capture_on_commit_callbacks)
    assert videos.video_cancel(video=queued).status == "cancelled"
    assert videos.video_run(video_id=queued.pk).state == "finished"

    running = _create(user, one_face_video, django_capture_on_commit_callbacks)
    monkeypatch.setattr(videos, "PROGRESS_EVERY_S", 0.0)
    real = tracked.recognise_frame

    def cancel_at_frame_3(tracker, rgb, frame):
        if frame == 3:
            videos.video_cancel(video=VideoJob.objects.get(pk=running.pk))
        return real(tracker, rgb, frame)

    monkeypatch.setattr(videos, "recognise_frame", cancel_at_frame_3)
    assert videos.video_run(video_id=running.pk).state == "cancelled"
    running.refresh_from_db()
    assert running.status == "cancelled" and running.frames_processed == 3
    assert not VideoAppearance.objects.filter(video=running).exists()


@pytest.mark.slow
def test_a_run_taken_over_by_a_newer_claim_writes_nothing(
    user, one_face_video, monkeypatch, media_root, django_capture_on_commit_callbacks
):
    from recognition import tracked, videos

    job = _create(user, one_face_video, django_capture_on_commit_callbacks)
    real = tracked.recognise_frame

    def newer_claim_at_the_last_frame(tracker, rgb, frame):
        if frame == 9:  # another worker claimed it meanwhile (this one looked dead)
            VideoJob.objects.filter(pk=job.pk).update(attempts=2)
        return real(tracker, rgb, frame)

    # No progress save after the start: the fence is met only when the result is written.
    monkeypatch.setattr(videos, "PROGRESS_EVERY_S", 1e9)
    monkeypatch.setattr(videos, "recognise_frame", newer_claim_at_the_last_frame)
    before = set(stored_files(media_root))
    assert videos.video_run(video_id=job.pk).state == "superseded"
    job.refresh_from_db()
    assert job.status == "running" and job.result is None
    assert not VideoAppearance.objects.filter(video=job).exists()
    assert set(stored_files(media_root)) == before  # its thumbnails were removed again


@pytest.mark.slow
def test_done_once_a_second_delivery_does_nothing_and_stale_claims_are_taken_over(
    user, one_face_video, settings, django_capture_on_commit_callbacks
):
    from recognition import videos

    job = _create(user, one_face_video, django_capture_on_commit_callbacks)
    # A fresh claim of another worker: busy; once its heartbeat is stale: taken over.
    VideoJob.objects.filter(pk=job.pk).update(status="running", attempts=1, claimed_at=timezone.now())
    assert videos.video_run(video_id=job.pk).state == "busy"
    stale = timezone.now() - timedelta(seconds=settings.FACESITE_VIDEO_STALE_AFTER + 5)
    VideoJob.objects.filter(pk=job.pk).update(claimed_at=stale)
    assert videos.video_run(video_id=job.pk).state == "done"
    job.refresh_from_db()
    assert job.attempts == 2 and job.appearances.count() == 1
    assert job.appearances.get().member_name == "Colin Powell"
    assert videos.video_run(video_id=job.pk).state == "finished"
    assert job.appearances.count() == 1
    # Out of attempts after interruptions: failed with the reason.
    other = _create(user, one_face_video, django_capture_on_commit_callbacks)
    VideoJob.objects.filter(pk=other.pk).update(
        status="running", attempts=settings.FACESITE_JOB_MAX_ATTEMPTS, claimed_at=stale
    )
    assert videos.video_run(video_id=other.pk).state == "failed"
    other.refresh_from_db()
    assert other.error_code == "interrupted"


# ------------------------------------------------------------------------------- pages


def test_pages_and_the_video_file_with_byte_ranges(user, tmp_path, django_capture_on_commit_callbacks):
    from django.test import Client

    from recognition import videos

    data = write_video(tmp_path / "page.mp4", [(None, 0, 1.0)]).read_bytes()
    with django_capture_on_commit_callbacks(execute=False):
        job = videos.video_create(user=user, upload=SimpleUploadedFile("page.mp4", data))
    client = Client()
    assert client.get("/camera/").status_code == 302  # logged-in users only
    client.force_login(user)
    camera = client.get("/camera/")
    assert camera.status_code == 200 and b'id="camera-video"' in camera.content
    assert b"page.mp4" in client.get("/videos/").content
    assert b'id="timeline"' in client.get(f"/videos/{job.pk}/").content
    whole = client.get(f"/videos/{job.pk}/file")
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes"
    assert b"".join(whole.streaming_content) == data
    part = client.get(f"/videos/{job.pk}/file", HTTP_RANGE="bytes=10-19")
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 10-19/{len(data)}"
    assert b"".join(part.streaming_content) == data[10:20]
    tail = client.get(f"/videos/{job.pk}/file", HTTP_RANGE="bytes=-5")
    assert b"".join(tail.streaming_content) == data[-5:]
    assert client.get(f"/videos/{job.pk}/file", HTTP_RANGE=f"bytes={len(data)}-").status_code == 416
    other = Client()
    other.force_login(get_user_model().objects.create_user("eve", password="pw-eve-123456"))
    assert other.get(f"/videos/{job.pk}/").status_code == 404
    assert other.get(f"/videos/{job.pk}/file").status_code == 404


def test_lost_video_messages_are_sent_again_then_failed_as_lost(
    user, tmp_path, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from recognition import videos

    sent: list[int] = []
    monkeypatch.setattr(videos, "_send", lambda video_id: sent.append(video_id) or True)
    data = write_video(tmp_path / "lost.mp4", [(None, 0, 1.0)]).read_bytes()
    with django_capture_on_commit_callbacks(execute=False):
        job = videos.video_create(user=user, upload=SimpleUploadedFile("lost.mp4", data))
    assert videos.videos_requeue_stale().requeued == []  # just sent: not lost yet
    long_ago = timezone.now() - timedelta(seconds=settings.FACESITE_JOB_REQUEUE_AFTER + 5)
    for _ in range(settings.FACESITE_JOB_MAX_REQUEUES):
        VideoJob.objects.filter(pk=job.pk).update(queued_at=long_ago)
        assert videos.videos_requeue_stale().requeued == [job.pk]
    VideoJob.objects.filter(pk=job.pk).update(queued_at=long_ago)
    assert videos.videos_requeue_stale().failed == [job.pk]
    job.refresh_from_db()
    assert job.status == "failed" and job.error_code == "lost"
    assert sent == [job.pk] * settings.FACESITE_JOB_MAX_REQUEUES


def test_the_requeue_command_sweeps_videos_too(
    user, tmp_path, settings, monkeypatch, django_capture_on_commit_callbacks
):
    import json

    from django.core.management import call_command

    from recognition import videos

    sent: list[int] = []
    monkeypatch.setattr(videos, "_send", lambda video_id: sent.append(video_id) or True)
    data = write_video(tmp_path / "lost.mp4", [(None, 0, 1.0)]).read_bytes()
    with django_capture_on_commit_callbacks(execute=False):
        job = videos.video_create(user=user, upload=SimpleUploadedFile("lost.mp4", data))
    long_ago = timezone.now() - timedelta(seconds=settings.FACESITE_JOB_REQUEUE_AFTER + 5)
    VideoJob.objects.filter(pk=job.pk).update(queued_at=long_ago)
    out = io.StringIO()
    call_command("requeue_jobs", "--json", stdout=out)
    assert json.loads(out.getvalue())["videos"]["requeued"] == [job.pk] and sent == [job.pk]


def test_admin_lists_video_jobs_and_deleting_one_removes_its_files(
    user, tmp_path, media_root, django_capture_on_commit_callbacks
):
    from django.test import Client

    from recognition import videos

    data = write_video(tmp_path / "admin.mp4", [(None, 0, 1.0)]).read_bytes()
    with django_capture_on_commit_callbacks(execute=False):
        job = videos.video_create(user=user, upload=SimpleUploadedFile("admin.mp4", data))
    VideoAppearance.objects.create(video=job, index=0, start_s=0, end_s=1)
    assert len(stored_files(media_root)) == 1
    admin = get_user_model().objects.create_superuser("root", password="pw-root-12345")
    client = Client()
    client.force_login(admin)
    assert b"admin.mp4" in client.get("/admin/recognition/videojob/").content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/recognition/videojob/{job.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not VideoJob.objects.exists() and not VideoAppearance.objects.exists()
    assert stored_files(media_root) == []


# ------------------------------------------------------------------------------- a real worker


@pytest.mark.slow
@pytest.mark.mysql
@pytest.mark.django_db(transaction=True)
def test_a_video_survives_its_worker_being_killed_mid_video(start_worker, redis_db, lfw_dir, tmp_path):
    from faceengine.images import load_image
    from members.services import member_create
    from recognition import videos
    from tests.workers import wait_for

    photos = lfw_photos(lfw_dir, "Colin_Powell")
    member = member_create(display_name="Colin Powell", photos=photos[:5]).member
    path = write_video(tmp_path / "long.mp4", [(load_image(photos[8]), 100, 40.0)])
    # Messages come back 10 s after a worker vanished; a heartbeat older than 8 s is stale.
    timing = {
        "CELERY_VISIBILITY_TIMEOUT": "10",
        "CELERY_UNACKED_RESTORE_INTERVAL": "2",
        "CELERY_UNACKED_RESTORE_THROTTLE": "1",
        "FACESITE_VIDEO_STALE_AFTER": "8",
    }
    first = start_worker(**timing)
    job = videos.video_create(user=None, upload=SimpleUploadedFile("long.mp4", path.read_bytes()))

    def mid_video():
        row = VideoJob.objects.get(pk=job.pk)
        return row if row.status == "running" and row.frames_processed >= 5 else None

    running = wait_for(mid_video, 180, "the first worker to be part-way through", first)
    first.kill()
    assert VideoJob.objects.get(pk=job.pk).status == "running"  # claimed, not lost
    assert not VideoAppearance.objects.filter(video_id=job.pk).exists()  # nothing half-written

    second = start_worker(**timing)

    def finished():
        row = VideoJob.objects.get(pk=job.pk)
        return row if row.is_finished else None

    done = wait_for(finished, 240, "the second worker to finish the video", second)
    assert done.status == "done", done.error_message
    assert done.attempts == 2 and done.worker != running.worker
    assert done.frames_processed == done.frames_total == 200
    rows = list(VideoAppearance.objects.filter(video_id=job.pk))
    assert [(r.member_id, r.start_s) for r in rows] == [(member.pk, 0.0)]
    assert rows[0].end_s == pytest.approx(39.8, abs=STEP + 1e-6)
    logs = first.text() + second.text()
    assert logs.count("'state': 'done'") == 1, logs[-4000:]


def test_containers_are_told_by_their_bytes():
    from recognition.video_probe import InvalidVideo, UnsupportedVideoType, container_of

    assert container_of(b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00") == "mov"
    assert container_of(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00") == "mp4"
    assert container_of(b"\x00\x00\x00\x08moov\x00\x00\x00\x00") == "mp4"
    assert container_of(b"\x1a\x45\xdf\xa3\x9fB\x86\x81\x01B\x82\x84webm") == "webm"
    with pytest.raises(UnsupportedVideoType, match="Matroska"):
        container_of(b"\x1a\x45\xdf\xa3\x9fB\x86\x81\x01B\x82\x88matroska")
    with pytest.raises(UnsupportedVideoType):
        container_of(b"RIFF\x00\x00\x00\x00AVI LIST")
    with pytest.raises(InvalidVideo):
        container_of(b"")
