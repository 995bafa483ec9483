"""Reads of the recognition app: jobs a user may see, and their results."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from recognition.models import RecognitionJob


def _visible_to(user: Any) -> QuerySet[RecognitionJob]:
    jobs = RecognitionJob.objects.all()
    if getattr(user, "is_superuser", False):
        return jobs
    if not getattr(user, "is_authenticated", False):
        return jobs.none()
    return jobs.filter(user=user)


def job_get_for_user(*, user: Any, job_id: int) -> RecognitionJob | None:
    """The job if it exists and the user may see it (their own; every job for a superuser)."""
    return _visible_to(user).filter(pk=job_id).first()


def job_list_for_user(*, user: Any, status: str | None = None) -> QuerySet[RecognitionJob]:
    """The user's own jobs, newest first."""
    if not getattr(user, "is_authenticated", False):
        return RecognitionJob.objects.none()
    jobs = RecognitionJob.objects.filter(user=user)
    if status:
        jobs = jobs.filter(status=status)
    return jobs.order_by("-created_at", "-id")


def job_result(*, job: RecognitionJob) -> dict:
    """The job as plain JSON-ready data: status, error, image size, faces and timings.

    ``faces``: [{"box": [x, y, w, h], "score", "landmarks", "member_id", "member", "similarity"}].
    Member names are read now, so a renamed member shows its new name.
    """
    faces = [dict(face) for face in (job.result or {}).get("faces", [])]
    ids = {f["member_id"] for f in faces if f.get("member_id")}
    if ids:
        from members.selectors import member_names

        names = member_names(ids)
        for face in faces:
            if face.get("member_id"):
                # A member deleted since keeps the name the job saw.
                face["member"] = names.get(face["member_id"], face.get("member"))
    return {
        "id": job.pk,
        "status": job.status,
        "finished": job.is_finished,
        "error": {"code": job.error_code, "message": job.error_message} if job.status == job.Status.FAILED else None,
        "original_name": job.original_name,
        "width": job.image_width,
        "height": job.image_height,
        "model_name": job.model_name,
        "attempts": job.attempts,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "faces": faces,
        # The 1:N threshold the faces were judged by (jobs before open-set calibration: None).
        "identification": (job.result or {}).get("identification"),
        "timings": job.timings or {},
    }
