"""Writes of video jobs: create (checked by content), cancel, and run on a worker.

The same guarantees as photo jobs (recognition.services): the task takes the id and is queued
once the row has committed; a claim is one conditional UPDATE counting one attempt (from
queued, or from running when the last heartbeat is older than FACESITE_VIDEO_STALE_AFTER); the
outcome and the appearance rows are written together, in one transaction, only while the row
still carries this run's attempt number. The running worker saves its progress (frames done of
the total) every few seconds, which is also its heartbeat and where it sees a cancellation.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from faceengine.errors import EngineError
from faceengine.index import normalize_rows
from faceengine.tracking import Tracker
from facesite import engine
from facesite.disk_full import StorageFull
from facesite.files import stored_name
from facesite.uploads import upload_name
from recognition import claims
from recognition.models import VideoAppearance, VideoJob
from recognition.services import RequeueReport, RunOutcome, _worker_name
from recognition.tracked import recognise_frame
from recognition.unknowns import NewUnknown, unknown_faces_for_videos_delete, unknown_video_faces_store
from recognition.video_probe import InvalidVideo, VideoInfo, VideoTooLarge, container_of, probe
from recognition.video_timeline import Appearance, Thumb, appearances_from_tracks

logger = logging.getLogger(__name__)

Status = VideoJob.Status
PROGRESS_EVERY_S = 2.0
THUMB_SIDE = 160
CHUNK = 1024 * 1024


class _Stop(Exception):
    """The run must end now: cancelled, or a newer claim took the job over."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


# ------------------------------------------------------------------------------- create


def video_create(*, user: Any, upload: Any) -> VideoJob:
    """Check an uploaded video (size, container bytes, OpenCV opens it and decodes a frame),
    store it under a generated name and queue the job once the row has committed. Raises
    ``VideoTooLarge``, ``UnsupportedVideoType``, ``InvalidVideo`` (nothing is kept) or
    ``StorageFull``."""
    limit = int(settings.FACESITE_MAX_VIDEO_BYTES)
    name = upload_name(upload) if not isinstance(upload, (bytes, bytearray)) else ""
    if isinstance(upload, (bytes, bytearray)):
        upload = ContentFile(bytes(upload), name="video")
    size = getattr(upload, "size", None)
    if size is not None and size > limit:
        raise VideoTooLarge(f"{name or 'The video'} is {size / 1e6:.1f} MB; the limit is {limit / 1e6:.0f} MB.")
    if size == 0:
        raise InvalidVideo(f"{name or 'The video'} is empty (0 bytes).")
    upload.seek(0)
    container = container_of(upload.read(64))
    upload.seek(0)
    job = VideoJob(user=user if getattr(user, "pk", None) else None, original_name=name[:255], container=container)
    job.video.save(f"video.{container}", ContentFile(b""), save=False)
    storage, stored = job.video.storage, stored_name(job.video)
    try:
        _copy_limited(upload, storage.path(stored), limit)
        info = probe(storage.path(stored), container)
        _check_length(info)
        _fill_info(job, info)
        with transaction.atomic():
            job.queued_at = timezone.now()
            job.save()
            job_id = job.pk
            transaction.on_commit(lambda: _send(job_id))
    except Exception:
        storage.delete(stored)
        raise
    logger.info("Video %s queued (%s, %s, %s s).", job.pk, name or "unnamed", container, job.duration_s)
    return job


def _copy_limited(upload: Any, path: str, limit: int) -> None:
    written = 0
    try:
        with open(path, "wb") as out:
            for chunk in upload.chunks(CHUNK) if hasattr(upload, "chunks") else iter(lambda: upload.read(CHUNK), b""):
                written += len(chunk)
                if written > limit:
                    raise VideoTooLarge(f"The video is over the limit of {limit / 1e6:.0f} MB.")
                out.write(chunk)
    except OSError as exc:
        if getattr(exc, "errno", None) == 28:  # ENOSPC
            raise StorageFull("The server's disk is full; try again later.") from exc
        raise


def _check_length(info: VideoInfo) -> None:
    limit = float(settings.FACESITE_MAX_VIDEO_SECONDS)
    if info.duration_s is not None and info.duration_s > limit:
        raise VideoTooLarge(f"The video is {info.duration_s:.0f} s long; the limit is {limit:.0f} s.")


def _fill_info(job: VideoJob, info: VideoInfo) -> None:
    job.width, job.height = info.width, info.height
    job.fps = info.fps or None
    job.duration_s = round(info.duration_s, 3) if info.duration_s is not None else None
    job.sample_fps = float(settings.FACESITE_VIDEO_SAMPLE_FPS or 5.0)
    job.frames_total = (
        math.ceil(info.duration_s * float(settings.FACESITE_VIDEO_SAMPLE_FPS or 5.0)) if info.duration_s else 0
    )


def _send(job_id: int) -> bool:
    from kombu.exceptions import OperationalError as BrokerError

    from recognition.tasks import run_video

    try:
        run_video.delay(job_id)
    except (BrokerError, ConnectionError) as exc:
        logger.error("Video %s is stored but could not be queued (%s).", job_id, exc)
        return False
    return True


def videos_requeue_stale(*, limit: int = 100) -> RequeueReport:
    """Re-send video jobs whose message looks lost (as ``jobs_requeue_stale`` does for photos):
    queued and last sent over FACESITE_JOB_REQUEUE_AFTER s ago, or running with a heartbeat older
    than FACESITE_VIDEO_STALE_AFTER; after FACESITE_JOB_MAX_REQUEUES re-sends, failed as lost.
    A re-send is a conditional update on ``requeues``; a second delivery is harmless (the claim)."""
    now = timezone.now()
    sent_before = now - timedelta(seconds=settings.FACESITE_JOB_REQUEUE_AFTER)
    stale_before = now - timedelta(seconds=settings.FACESITE_VIDEO_STALE_AFTER)
    lost = Q(status=Status.QUEUED, queued_at__lt=sent_before) | Q(status=Status.RUNNING, claimed_at__lt=stale_before)
    report = RequeueReport(requeued=[], failed=[])
    candidates = VideoJob.objects.filter(lost).order_by("created_at", "id").values_list("id", "requeues", "status")
    for video_id, requeues, status in candidates[:limit]:
        row = VideoJob.objects.filter(pk=video_id, status=status, requeues=requeues)
        if requeues >= settings.FACESITE_JOB_MAX_REQUEUES:
            message = f"The video was never finished: its queue message was lost and re-sent {requeues} time(s)."
            if row.update(status=Status.FAILED, error_code="lost", error_message=message, finished_at=now):
                report.failed.append(video_id)
            continue
        if not row.update(requeues=F("requeues") + 1, queued_at=now):
            continue  # claimed, finished or re-sent meanwhile
        if not _send(video_id):
            VideoJob.objects.filter(pk=video_id, requeues=requeues + 1).update(requeues=requeues)
            report.broker_down = True
            break
        logger.warning("Video %s (%s) re-sent: its message looked lost.", video_id, status)
        report.requeued.append(video_id)
    return report


def video_cancel(*, video: VideoJob) -> VideoJob:
    """Ask for a video job to stop: a queued one is cancelled at once, a running one at its
    worker's next progress save; a finished one is left as it is."""
    VideoJob.objects.filter(pk=video.pk).exclude(status__in=[Status.DONE, Status.FAILED, Status.CANCELLED]).update(
        cancel_requested=True
    )
    VideoJob.objects.filter(pk=video.pk, status=Status.QUEUED).update(
        status=Status.CANCELLED,
        error_code="cancelled",
        error_message="Cancelled before it started.",
        finished_at=timezone.now(),
    )
    video.refresh_from_db()
    return video


def video_delete(*, video: VideoJob) -> None:
    """Delete a video job, its appearances, its unknown people (out of their clusters) and,
    once that has committed, its files."""
    names = [(a.thumbnail.storage, a.thumbnail.name) for a in video.appearances.all() if a.thumbnail.name]
    if video.video.name:
        names.append((video.video.storage, video.video.name))

    def remove_files() -> None:
        for storage, name in names:
            storage.delete(name)

    with transaction.atomic():
        unknown_faces_for_videos_delete(video_ids=[video.pk])
        video.delete()
        transaction.on_commit(remove_files)


# ------------------------------------------------------------------------------- run


def _claim(video_id: int) -> tuple[VideoJob | None, RunOutcome | None]:
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.FACESITE_VIDEO_STALE_AFTER)
    claimable = Q(status=Status.QUEUED) | Q(status=Status.RUNNING, claimed_at__lt=stale_before)
    claimed = VideoJob.objects.filter(
        claimable, pk=video_id, attempts__lt=settings.FACESITE_JOB_MAX_ATTEMPTS, cancel_requested=False
    ).update(
        status=Status.RUNNING,
        attempts=F("attempts") + 1,
        claimed_at=now,
        started_at=now,
        worker=_worker_name(),
        frames_processed=0,
    )
    job = VideoJob.objects.filter(pk=video_id).first()
    if claimed:
        return job, None
    if job is None:
        return None, RunOutcome("gone", video_id)
    if job.is_finished:
        return None, RunOutcome("finished", video_id)
    if job.cancel_requested:
        VideoJob.objects.filter(pk=video_id).exclude(status__in=[Status.DONE, Status.FAILED]).update(
            status=Status.CANCELLED, error_code="cancelled", error_message="Cancelled.", finished_at=now
        )
        return None, RunOutcome("cancelled", video_id)
    if job.status == Status.RUNNING and job.claimed_at and job.claimed_at >= stale_before:
        return None, RunOutcome("busy", video_id, retry_in=(job.claimed_at - stale_before).total_seconds() + 1)
    claims.fail_interrupted(VideoJob, video_id, job.attempts, "video")
    return None, RunOutcome("failed", video_id)


def _finish(job: VideoJob, attempt: int, **fields: Any) -> bool:
    """Write the outcome if this run still holds the latest claim (the fencing token)."""
    return claims.finish_if_latest(VideoJob, job.pk, attempt, "Video", **fields)


def _progress(job: VideoJob, attempt: int, done: int) -> None:
    """Save progress and refresh the heartbeat; stop if cancelled or superseded."""
    saved = VideoJob.objects.filter(pk=job.pk, status=Status.RUNNING, attempts=attempt, cancel_requested=False).update(
        frames_processed=done, claimed_at=timezone.now()
    )
    if not saved:
        row = VideoJob.objects.filter(pk=job.pk).values("attempts", "cancel_requested", "status").first()
        if row and row["attempts"] == attempt and row["cancel_requested"]:
            raise _Stop("cancelled")
        raise _Stop("superseded")


@dataclass
class _Scan:
    times: list[float]
    thumbs: dict[int, Thumb]
    tracks: list
    faces_seen: int
    threshold: float | None
    duration_s: float
    truncated: bool


def _scan(job: VideoJob, attempt: int) -> _Scan:
    """Decode the sampled frames, track and recognise them; progress every few seconds."""
    import cv2

    path = job.video.storage.path(stored_name(job.video))
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise InvalidVideo("The stored video cannot be opened any more.")
    step = 1.0 / float(job.sample_fps or settings.FACESITE_VIDEO_SAMPLE_FPS)  # type: ignore[arg-type]
    fps = float(job.fps or capture.get(cv2.CAP_PROP_FPS) or 25.0)
    max_seconds = float(settings.FACESITE_MAX_VIDEO_SECONDS)
    tracker = Tracker()
    times: list[float] = []
    thumbs: dict[int, Thumb] = {}
    faces_seen, decoded, next_t, last_t = 0, 0, 0.0, 0.0
    threshold = None
    truncated = False
    last_save = time.monotonic()
    expected = int(job.frames_total or 0)
    try:
        while True:
            if not capture.grab():
                break
            t = decoded / fps
            decoded += 1
            last_t = t
            if t + 1e-6 < next_t:
                continue
            while next_t <= t + 1e-6:
                next_t += step
            if t > max_seconds:
                raise VideoTooLarge(f"The video is longer than the limit of {max_seconds:.0f} s.")
            ok, bgr = capture.retrieve()
            if not ok or bgr is None:
                truncated = True
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            result = recognise_frame(tracker, rgb, len(times))
            threshold = result.threshold if result.threshold is not None else threshold
            times.append(round(t, 3))
            faces_seen += len(result.faces)
            for face in result.faces:
                _keep_thumb(thumbs, face.track.id, face.score, face.box, rgb)
            if time.monotonic() - last_save >= PROGRESS_EVERY_S:
                _progress(job, attempt, len(times))
                last_save = time.monotonic()
    finally:
        capture.release()
    if expected and len(times) < expected - 1:
        truncated = True
    return _Scan(times, thumbs, tracker.finish(), faces_seen, threshold, round(last_t + 1.0 / fps, 3), truncated)


def _keep_thumb(thumbs: dict[int, Thumb], track_id: int, score: float, box: tuple, rgb: np.ndarray) -> None:
    kept = thumbs.get(track_id)
    if kept is not None and score <= kept.score + 1e-4:
        return
    import cv2

    x, y, w, h = box
    pad = 0.3 * max(w, h)
    x0, y0 = max(0, int(x - pad)), max(0, int(y - pad))
    x1, y1 = min(rgb.shape[1], int(x + w + pad)), min(rgb.shape[0], int(y + h + pad))
    crop = rgb[y0:y1, x0:x1]
    if crop.size == 0:
        return
    scale = THUMB_SIDE / max(crop.shape[:2])
    if scale < 1:
        crop = cv2.resize(crop, (max(1, int(crop.shape[1] * scale)), max(1, int(crop.shape[0] * scale))))
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if ok:
        thumbs[track_id] = Thumb(float(score), jpeg.tobytes(), [round(float(v), 1) for v in box])


def video_run(*, video_id: int) -> RunOutcome:
    """Claim a video job and recognise it to the end (the task's body); idempotent."""
    from celery.exceptions import SoftTimeLimitExceeded

    from members.selectors import member_names

    job, outcome = _claim(video_id)
    if outcome is not None:
        return outcome
    if job is None:
        return RunOutcome("gone", video_id)
    attempt = job.attempts
    started = time.perf_counter()
    timings: dict[str, float] = {}
    try:
        recognizer = engine.recognizer()  # loads once per process
        timings["model"] = round(time.perf_counter() - started, 3)
        _progress(job, attempt, 0)
        scan = _scan(job, attempt)
        timings["scan"] = round(time.perf_counter() - started - timings["model"], 3)
        if not scan.times:
            return _fail(job, attempt, "invalid_video", "No frame of the video could be decoded.", timings)
        if scan.faces_seen == 0:
            return _fail(
                job,
                attempt,
                "no_face",
                f"No face was found in the {len(scan.times)} frames looked at.",
                timings,
                frames_processed=len(scan.times),
            )
        appearances = appearances_from_tracks(scan.tracks, scan.times, scan.thumbs, scan.threshold)
        names = member_names([a.member_id for a in appearances if a.member_id is not None])
        result = {
            "faces_seen": scan.faces_seen,
            "tracks": len(scan.tracks),
            "threshold": None if scan.threshold is None else round(scan.threshold, 4),
            "truncated": scan.truncated,
        }
        timings["run"] = round(time.perf_counter() - started, 3)
        ok = _store(job, attempt, appearances, names, result, timings, scan, recognizer.model_name, recognizer.dim)
    except _Stop as stop:
        if stop.state == "cancelled":
            _finish(job, attempt, status=Status.CANCELLED, error_code="cancelled", error_message="Cancelled.")
            return RunOutcome("cancelled", video_id)
        return RunOutcome("superseded", video_id)
    except (EngineError, InvalidVideo, VideoTooLarge) as exc:
        return _fail(job, attempt, exc.code, str(exc), timings)
    except SoftTimeLimitExceeded:
        return _fail(job, attempt, "time_limit", "The video took longer than its time limit.", timings)
    except FileNotFoundError:
        return _fail(job, attempt, "file_missing", "The uploaded video is no longer stored.", timings)
    except Exception:
        logger.exception("Video %s failed.", video_id)
        return _fail(job, attempt, "internal_error", "The video could not be processed; see the worker log.", timings)
    if ok:
        logger.info("Video %s done: %d appearance(s) in %.1f s.", video_id, len(appearances), timings["run"])
    return RunOutcome("done" if ok else "superseded", video_id)


def _fail(job: VideoJob, attempt: int, code: str, message: str, timings: dict, **fields: Any) -> RunOutcome:
    ok = _finish(
        job, attempt, status=Status.FAILED, error_code=code[:50], error_message=message, timings=timings, **fields
    )
    return RunOutcome("failed" if ok else "superseded", job.pk)


def _store(
    job: VideoJob,
    attempt: int,
    appearances: list[Appearance],
    names: dict[int, str],
    result: dict,
    timings: dict,
    scan: _Scan,
    model_name: str,
    dim: int,
) -> bool:
    """The outcome and the appearance rows in one transaction, under the fence; thumbnails
    saved first and removed again when the fence says another claim owns the job."""
    rows = []
    saved_files: list[str] = []
    try:
        for index, item in enumerate(appearances):
            member_id = item.member_id if item.member_id in names else None
            row = VideoAppearance(
                video_id=job.pk,
                index=index,
                member_id=member_id,
                member_name=names.get(member_id, "") if member_id else "",
                start_s=item.start_s,
                end_s=item.end_s,
                best_similarity=None if item.best_similarity is None else round(item.best_similarity, 4),
                frames=item.frames,
                box=item.thumb.box if item.thumb else [],
            )
            if item.thumb is not None:
                row.thumbnail.save("thumb.jpg", ContentFile(item.thumb.jpeg), save=False)
                saved_files.append(stored_name(row.thumbnail))
            rows.append(row)
        with transaction.atomic():
            ok = _finish(
                job,
                attempt,
                status=Status.DONE,
                frames_processed=len(scan.times),
                frames_total=len(scan.times),
                duration_s=job.duration_s if job.duration_s and not scan.truncated else scan.duration_s,
                result=result,
                timings=timings,
                model_name=model_name,
                error_code="",
                error_message="",
            )
            if ok:
                VideoAppearance.objects.filter(video_id=job.pk).delete()  # none, unless a bug left some
                VideoAppearance.objects.bulk_create(rows)
                _keep_unknown_people(job, appearances, model_name, dim)
    except Exception:
        _delete_files(job, saved_files)
        raise
    if not ok:
        _delete_files(job, saved_files)
    return ok


def _keep_unknown_people(job: VideoJob, appearances: list[Appearance], model_name: str, dim: int) -> None:
    """The unknown people of the video join the photos' unknown faces (and their clusters), in
    the transaction that stores the appearances: one face each, the track's mean vector and
    the best frame's crop."""
    faces = []
    for index, item in enumerate(appearances):
        if item.member_id is not None or item.vector is None or item.thumb is None:
            continue
        vector = normalize_rows(np.asarray(item.vector, np.float32)[None])[0]  # a mean is shorter than 1
        face = NewUnknown(face_index=index, box=item.thumb.box, score=item.thumb.score, vector=vector)
        faces.append((face, item.thumb.jpeg))
    if not faces:
        return
    try:
        # A savepoint, as for photo jobs: if these side records cannot be written (a full disk
        # for the crops), the video's result and appearances still are.
        with transaction.atomic():
            unknown_video_faces_store(video=job, faces=faces, model_name=model_name, dim=dim)
    except Exception:
        logger.exception("Video %s: its unknown people could not be kept for clustering.", job.pk)


def _delete_files(job: VideoJob, names: list[str]) -> None:
    storage = job.video.storage
    for name in names:
        storage.delete(name)
