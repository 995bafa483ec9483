"""Writes of the recognition app: creating jobs and running them.

Data flows one way: upload -> ``job_create`` (checked, stored, queued after the commit) ->
``recognition.tasks.run_job`` on a worker -> ``job_run`` (claim, engine, result) -> the row.

Delivery is at least once (``acks_late``; a worker that dies mid-job gets its message delivered
again), so ``job_run`` is idempotent:

* a claim is one conditional UPDATE: from ``queued``, or from ``running`` when the earlier
  claim is older than ``FACESITE_JOB_STALE_AFTER`` (longer than the task time limit, so its
  worker is surely gone), and only while ``attempts < FACESITE_JOB_MAX_ATTEMPTS``;
* every claim counts one attempt, and the result is written only if the row still carries that
  attempt number (a fencing token): a run that was given up on cannot overwrite a newer one;
* after the last attempt a job that was interrupted again is failed with the reason.

A message can also be lost outright: the broker restarted without persistence, or it was down
when the job was created. ``jobs_requeue_stale`` (at worker start, from beat, ``manage.py
requeue_jobs``) re-sends every job left queued, or claimed by a worker long gone, and after
``FACESITE_JOB_MAX_REQUEUES`` re-sends fails it with the reason: no job stays queued for ever.

A full disk while the photo is stored is ``UploadRejected`` with the code ``storage_full``
(``facesite.disk_full``): the partial file is removed and no row is written.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from faceengine.errors import EngineError, FacesiteError, ImageError, ImageTooLarge
from faceengine.images import load_image
from facesite import engine
from facesite.disk_full import StorageFull
from facesite.engine import image_limits
from facesite.files import stored_name
from facesite.uploads import photo_extension, read_upload, upload_name
from recognition import claims
from recognition.models import RecognitionJob

logger = logging.getLogger(__name__)

Status = RecognitionJob.Status
# Test hook, documented: when set, a claimed job sleeps this many seconds before the engine
# runs, so the worker tests can kill a worker that is certainly mid-job. Never set it otherwise.
TEST_DELAY_ENV = "FACESITE_JOB_TEST_DELAY"


class UploadRejected(FacesiteError):
    """The upload is not a photo the engine accepts; ``code`` is the engine's stable code."""

    code = ImageError.code


# ------------------------------------------------------------------------------- create


def _read_upload(upload: Any) -> tuple[str, bytes]:
    """(the original name, shown only; the bytes, at most the limit plus one)."""
    limit = settings.FACESITE_MAX_UPLOAD_BYTES
    if isinstance(upload, (bytes, bytearray, memoryview)):
        return "", bytes(upload)
    name = upload_name(upload)
    size = getattr(upload, "size", None)
    if size is not None and size > limit:
        raise UploadRejected(
            f"{name or 'The file'} is {size / 1e6:.1f} MB; the limit is {limit / 1e6:.1f} MB.", code=ImageTooLarge.code
        )
    return name, read_upload(upload, limit)


def job_create(*, user: Any, upload: Any) -> RecognitionJob:
    """Check an uploaded photo by its content, store it under a generated name and queue the job.

    ``upload`` is a file object (a Django ``UploadedFile``) or bytes. Raises ``UploadRejected``
    (with the engine's code: ``unsupported_image_type``, ``image_too_large``, ``invalid_image``)
    before anything is stored, and ``storage_full`` when the disk is full (nothing is kept). The
    task is queued only once the row has committed.
    """
    name, data = _read_upload(upload)
    try:
        rgb = load_image(data, image_limits())
    except EngineError as exc:
        label = f"{name}: " if name else ""
        raise UploadRejected(f"{label}{exc}", code=exc.code) from None
    job = RecognitionJob(
        user=user if getattr(user, "pk", None) else None,
        original_name=name,
        image_width=int(rgb.shape[1]),
        image_height=int(rgb.shape[0]),
    )
    try:
        # A full disk: the partial file is removed and StorageFull raised (facesite.disk_full).
        job.photo.save(f"photo.{photo_extension(data)}", ContentFile(data), save=False)
    except StorageFull as exc:
        raise UploadRejected(exc.message, code=exc.code) from exc
    try:
        with transaction.atomic():
            job.queued_at = timezone.now()
            job.save()
            job_id = job.pk
            transaction.on_commit(lambda: _send(job_id))
    except Exception:
        if job.photo.name:
            job.photo.storage.delete(job.photo.name)
        raise
    logger.info("Job %s queued (%s, %d bytes).", job.pk, name or "unnamed", len(data))
    return job


def _send(job_id: int) -> bool:
    """Queue ``run_job`` for a committed job. A broker that cannot be reached is logged, not
    raised: the row is committed and ``jobs_requeue_stale`` sends it once the broker is back."""
    from kombu.exceptions import OperationalError as BrokerError

    from recognition.tasks import run_job

    try:
        run_job.delay(job_id)
    except (BrokerError, ConnectionError) as exc:
        logger.error("Job %s is stored but could not be queued (%s); the requeue sweep will send it.", job_id, exc)
        return False
    return True


# ------------------------------------------------------------------------------- requeue


@dataclass
class RequeueReport:
    """What one sweep did: job ids re-sent, failed (out of re-sends), and whether the broker
    refused (the sweep then stops; the jobs stay as they were for the next sweep)."""

    requeued: list[int]
    failed: list[int]
    broker_down: bool = False

    def as_dict(self) -> dict:
        return {"requeued": self.requeued, "failed": self.failed, "broker_down": self.broker_down}


def _lost_message(requeues: int) -> str:
    return (
        f"The job was never picked up: its queue message was lost (the queue server restarted or "
        f"was unreachable), and it was sent again {requeues} time(s) without a worker taking it."
    )


def jobs_requeue_stale(
    *, requeue_after: float | None = None, max_requeues: int | None = None, limit: int = 500
) -> RequeueReport:
    """Re-send jobs whose message looks lost; fail, with the reason, those re-sent too often.

    A job looks lost when it is ``queued`` and was last sent over ``requeue_after`` seconds ago,
    or ``running`` with a claim older than ``FACESITE_JOB_STALE_AFTER`` (its worker is gone and,
    if the broker restarted, so is the unacknowledged message) and last sent that long ago too.
    Each re-send is a conditional update on the ``requeues`` counter, so two sweeps running at
    once send a job once; and a job whose message did exist is only delivered twice, which the
    claim in ``job_run`` makes harmless. Safe to run at any time, as often as wanted.
    """
    now = timezone.now()
    requeue_after = settings.FACESITE_JOB_REQUEUE_AFTER if requeue_after is None else requeue_after
    max_requeues = settings.FACESITE_JOB_MAX_REQUEUES if max_requeues is None else max_requeues
    sent_before = now - timedelta(seconds=requeue_after)
    stale_before = now - timedelta(seconds=settings.FACESITE_JOB_STALE_AFTER)
    not_sent_since = Q(queued_at__lt=sent_before) | Q(queued_at__isnull=True, created_at__lt=sent_before)
    lost = Q(status=Status.QUEUED) | Q(status=Status.RUNNING, claimed_at__lt=stale_before)
    candidates = (
        RecognitionJob.objects.filter(lost, not_sent_since)
        .order_by("created_at", "id")
        .values_list("id", "requeues", "status")[:limit]
    )
    report = RequeueReport(requeued=[], failed=[])
    for job_id, requeues, status in candidates:
        row = RecognitionJob.objects.filter(pk=job_id, status=status, requeues=requeues)
        if requeues >= max_requeues:
            if row.update(
                status=Status.FAILED, error_code="lost", error_message=_lost_message(requeues), finished_at=now
            ):
                logger.warning("Job %s failed: %s", job_id, _lost_message(requeues))
                report.failed.append(job_id)
            continue
        if not row.update(requeues=F("requeues") + 1, queued_at=now):
            continue  # claimed, finished or re-sent by someone else meanwhile
        if not _send(job_id):
            # Undo this re-send so it is not counted against the job; try again next sweep.
            RecognitionJob.objects.filter(pk=job_id, requeues=requeues + 1).update(
                requeues=requeues, queued_at=now - timedelta(seconds=requeue_after)
            )
            report.broker_down = True
            break
        logger.warning(
            "Job %s (%s) re-sent: its message looked lost (re-send %d of %d).",
            job_id,
            status,
            requeues + 1,
            max_requeues,
        )
        report.requeued.append(job_id)
    return report


# ------------------------------------------------------------------------------- run


@dataclass
class RunOutcome:
    """What ``job_run`` did: ``done``, ``failed``, ``busy`` (another worker holds a fresh claim;
    try again in ``retry_in`` seconds), ``finished`` (already done or failed), ``gone``,
    ``superseded`` (a newer claim took the job over; this run's result was dropped)."""

    state: str
    job_id: int
    retry_in: float = 0.0


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:255]


def _claim(job_id: int) -> tuple[RecognitionJob | None, RunOutcome | None]:
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.FACESITE_JOB_STALE_AFTER)
    max_attempts = settings.FACESITE_JOB_MAX_ATTEMPTS
    claimable = Q(status=Status.QUEUED) | Q(status=Status.RUNNING, claimed_at__lt=stale_before)
    claimed = RecognitionJob.objects.filter(claimable, pk=job_id, attempts__lt=max_attempts).update(
        status=Status.RUNNING, attempts=F("attempts") + 1, claimed_at=now, started_at=now, worker=_worker_name()
    )
    job = RecognitionJob.objects.filter(pk=job_id).first()
    if claimed:
        return job, None
    if job is None:
        logger.info("Job %s no longer exists; nothing to do.", job_id)
        return None, RunOutcome("gone", job_id)
    if job.is_finished:
        logger.info("Job %s is already %s; this delivery does nothing.", job_id, job.status)
        return None, RunOutcome("finished", job_id)
    if job.status == Status.RUNNING and job.claimed_at and job.claimed_at >= stale_before:
        retry_in = (job.claimed_at - stale_before).total_seconds() + 1
        logger.info(
            "Job %s is held by %s since %s; will look again in %.0f s.", job_id, job.worker, job.claimed_at, retry_in
        )
        return None, RunOutcome("busy", job_id, retry_in=retry_in)
    # Out of attempts: every earlier run was interrupted (its worker died or was killed).
    message = claims.fail_interrupted(RecognitionJob, job_id, job.attempts, "job")
    logger.warning("Job %s failed: %s", job_id, message)
    return None, RunOutcome("failed", job_id)


def _finish(job: RecognitionJob, attempt: int, **fields: Any) -> bool:
    """Write the outcome if this run still holds the latest claim (the fencing token)."""
    return claims.finish_if_latest(RecognitionJob, job.pk, attempt, "Job", **fields)


def _fail(job: RecognitionJob, attempt: int, code: str, message: str, timings: dict) -> RunOutcome:
    ok = _finish(job, attempt, status=Status.FAILED, error_code=code[:50], error_message=message, timings=timings)
    return RunOutcome("failed" if ok else "superseded", job.pk)


def _member_id(label: Hashable) -> int:
    """A gallery label as a member id: members.selectors labels the gallery with member ids."""
    return int(cast(int, label))


def _test_delay() -> None:
    raw = os.environ.get(TEST_DELAY_ENV)
    if raw:
        logger.warning("%s=%s: sleeping inside the running job (test hook).", TEST_DELAY_ENV, raw)
        time.sleep(float(raw))


def job_run(*, job_id: int) -> RunOutcome:
    """Claim a job, run the engine on its photo and store every face (the task's body)."""
    from celery.exceptions import SoftTimeLimitExceeded

    from members import selectors as member_selectors
    from members import services as member_services

    job, outcome = _claim(job_id)
    if outcome is not None:
        return outcome
    if job is None:  # claimed, then deleted before it could be read back
        logger.info("Job %s no longer exists; nothing to do.", job_id)
        return RunOutcome("gone", job_id)
    attempt = job.attempts
    claimed_at = job.claimed_at or timezone.now()  # _claim has just set it
    timings: dict[str, float] = {"queued": round((claimed_at - job.created_at).total_seconds(), 3)}
    started = time.perf_counter()
    try:
        _test_delay()
        mark = time.perf_counter()
        recognizer = engine.recognizer()  # loads once per process
        timings["model"] = round(time.perf_counter() - mark, 3)
        mark = time.perf_counter()
        with job.photo.storage.open(stored_name(job.photo), "rb") as handle:
            rgb = load_image(handle, image_limits())
        timings["decode"] = round(time.perf_counter() - mark, 3)
        mark = time.perf_counter()
        identification = member_services.identify(image=rgb)
        recognitions = identification.faces
        timings["engine"] = round(time.perf_counter() - mark, 3)
        mark = time.perf_counter()
        labels = [_member_id(r.label) for r in recognitions if r.label is not None]
        names = member_selectors.member_names(labels) if labels else {}
        faces = []
        for r in recognitions:
            face = r.to_dict()
            member_id = _member_id(r.label) if r.label is not None else None
            faces.append(
                {
                    "box": face["box"],
                    "score": face["score"],
                    "landmarks": face["landmarks"],
                    "member_id": member_id,
                    "member": names.get(member_id) if member_id else None,
                    "similarity": face["similarity"],
                    "margin": face["margin"],
                }
            )
        timings["run"] = round(time.perf_counter() - started, 3)
        timings["total"] = round((timezone.now() - job.created_at).total_seconds(), 3)
        with transaction.atomic():
            ok = _finish(
                job,
                attempt,
                status=Status.DONE,
                result={"faces": faces, "identification": identification.bar.to_dict()},
                timings=timings,
                model_name=recognizer.model_name,
                error_code="",
                error_message="",
            )
            if ok:
                # Only the holder of the latest claim keeps the unknown faces, in the same
                # transaction as the result: a job run twice stores them once.
                _store_faces(job, rgb, recognitions, names, recognizer.model_name, recognizer.dim)
    except EngineError as exc:
        return _fail(job, attempt, exc.code, str(exc), timings)
    except SoftTimeLimitExceeded:
        return _fail(
            job,
            attempt,
            "time_limit",
            f"The photo took longer than the limit of {settings.CELERY_TASK_SOFT_TIME_LIMIT} s.",
            timings,
        )
    except FileNotFoundError:
        return _fail(job, attempt, "file_missing", "The uploaded photo is no longer stored.", timings)
    except Exception:
        logger.exception("Job %s failed.", job_id)
        return _fail(job, attempt, "internal_error", "The photo could not be processed; see the worker log.", timings)
    if ok:
        logger.info("Job %s done: %d face(s) in %.2f s.", job_id, len(faces), timings["run"])
    return RunOutcome("done" if ok else "superseded", job_id)


def _store_faces(job: RecognitionJob, rgb: Any, recognitions: list, names: dict, model_name: str, dim: int) -> None:
    """The members recognised (MemberAppearance) and the unknown faces (recognition.unknowns)."""
    from recognition.models import MemberAppearance
    from recognition.unknowns import NewUnknown, unknown_faces_store

    unknown = [
        NewUnknown(face_index=i, box=r.box, score=float(r.score), vector=r.embedding)
        for i, r in enumerate(recognitions)
        if r.label is None and r.embedding is not None
    ]
    try:
        # A savepoint: if these side records cannot be written (a full disk for the crops), the
        # job's result still is, and the failure is logged.
        with transaction.atomic():
            MemberAppearance.objects.bulk_create(
                [
                    MemberAppearance(job=job, member_id=_member_id(r.label), face_index=i, similarity=r.similarity)
                    for i, r in enumerate(recognitions)
                    if r.label is not None and _member_id(r.label) in names  # a member deleted meanwhile: none
                ],
                ignore_conflicts=True,
            )
            if unknown:
                unknown_faces_store(job=job, rgb=rgb, faces=unknown, model_name=model_name, dim=dim)
    except Exception:
        logger.exception("Job %s: its appearances and unknown faces could not be stored.", job.pk)


def job_delete(*, job: RecognitionJob | int) -> None:
    """Delete a job and, once that has committed, its photo; its unknown faces leave their
    clusters first (sizes and representatives follow) and their crops go too."""
    from recognition.unknowns import unknown_faces_for_jobs_delete

    job_id = job.pk if isinstance(job, RecognitionJob) else int(job)
    row = RecognitionJob.objects.filter(pk=job_id).first()
    if row is None:
        return
    name, storage = row.photo.name, row.photo.storage
    with transaction.atomic():
        unknown_faces_for_jobs_delete(job_ids=[job_id])
        row.delete()
        if name:
            transaction.on_commit(lambda: storage.delete(name))


def job_face_crop(*, job: RecognitionJob, face_index: int, margin: float = 0.6) -> bytes:
    """A JPEG of one face of a job's photo with room around it, for enrolment (the enrolment
    service keeps the largest face of a photo, so the crop holds this face and little else)."""
    import io

    from PIL import Image, ImageOps

    faces = (job.result or {}).get("faces") or []
    if not 0 <= face_index < len(faces):
        raise UploadRejected(f"Job {job.pk} has no face number {face_index + 1}.", code="invalid_input")
    x, y, w, h = faces[face_index]["box"]
    with job.photo.storage.open(stored_name(job.photo), "rb") as handle:
        image = ImageOps.exif_transpose(Image.open(handle)).convert("RGB")
    pad_w, pad_h = w * margin, h * margin
    box = (
        max(0, int(x - pad_w)),
        max(0, int(y - pad_h)),
        min(image.width, int(x + w + pad_w)),
        min(image.height, int(y + h + pad_h)),
    )
    buffer = io.BytesIO()
    image.crop(box).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def job_face_enrol(
    *, job: RecognitionJob, face_index: int, member: Any, mode: str = "average", actor: Any = None
) -> list:
    """ "This is ...": add a face of a job to a member, through the enrolment workers
    (``actor``, the user who said so, goes to the members' audit log)."""
    from members import services as member_services

    crop = job_face_crop(job=job, face_index=face_index)
    upload = ContentFile(crop, name=f"job-{job.pk}-face-{face_index + 1}.jpg")
    return member_services.member_upload_photos(member=member, files=[upload], mode=mode, actor=actor)
