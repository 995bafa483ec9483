"""Photos staged for a member (the admin, the enrol page, "this is ..." on a job) and the
worker that runs the engine on them."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from facesite.files import stored_name
from facesite.uploads import photo_extension, read_upload, upload_name

from ..errors import (
    EnrolmentFailed,
    InvalidInput,
    MemberNotFound,
)
from ..models import (
    Member,
    PhotoUpload,
)
from .enrolment import member_add_faces
from .files import delete_files
from .gallery import lock_member, member_id_of
from .results import MODES, PhotoOutcome

logger = logging.getLogger(__name__)


def member_upload_photos(
    *, member: Member | int, files: Iterable[Any], mode: str = "average", actor: Any = None
) -> list[PhotoUpload]:
    """Stage uploaded photos for a member and queue the engine work after the commit.

    The files are saved under generated names; ``members.tasks.process_uploads_task`` runs
    ``member_add_faces`` on them, and each upload row keeps its outcome for the admin to show.
    """
    from ..tasks import process_uploads_task

    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {MODES}, got {mode!r}.")
    member_id = member_id_of(member)
    uploads = []
    staged: list[str] = []  # files written so far: removed if the request fails (a full disk)
    try:
        with transaction.atomic():
            lock_member(member_id)
            for upload in files:
                name = upload_name(upload)
                row = PhotoUpload(
                    member_id=member_id,
                    original_name=name,
                    mode=mode,
                    uploaded_by=actor if getattr(actor, "is_authenticated", False) else None,
                )
                data = read_upload(upload, settings.FACESITE_MAX_UPLOAD_BYTES)
                # From the content, never from the uploaded name; a non-image is staged as .bin
                # and the worker reports why.
                ext = photo_extension(data)
                row.file.save(f"upload.{ext}", ContentFile(data), save=False)
                staged.append(stored_name(row.file))
                row.save()
                uploads.append(row)
            ids = [u.pk for u in uploads]
            if ids:
                transaction.on_commit(lambda: process_uploads_task.delay(ids))
    except Exception:
        delete_files(staged, PhotoUpload._meta.get_field("file").storage)
        raise
    return uploads


def uploads_process(*, upload_ids: Sequence[int]) -> dict:
    """Run the engine on staged uploads (the task's body). Idempotent: a row is claimed by a
    conditional update from pending to processing, so a redelivered task skips it."""
    claimed: list[PhotoUpload] = []
    for upload_id in upload_ids:
        if PhotoUpload.objects.filter(pk=upload_id, status=PhotoUpload.Status.PENDING).update(
            status=PhotoUpload.Status.PROCESSING
        ):
            claimed.append(PhotoUpload.objects.get(pk=upload_id))
        else:
            logger.info("Upload %s is gone or already claimed; skipped.", upload_id)
    summary = {"claimed": len(claimed), "added": 0, "failed": 0}
    groups: dict[tuple[int, str, int | None], list[PhotoUpload]] = defaultdict(list)
    for upload in claimed:
        groups[(upload.member_id, upload.mode, upload.uploaded_by_id)].append(upload)
    storage = PhotoUpload._meta.get_field("file").storage
    for (member_id, mode, _uploader), uploads in groups.items():
        photos = []
        for upload in uploads:
            try:
                with storage.open(stored_name(upload.file), "rb") as handle:
                    photos.append((upload.original_name or upload.file.name, handle.read()))
            except OSError:
                photos.append((upload.original_name, b""))
        outcomes: list[PhotoOutcome]
        try:
            outcomes = member_add_faces(
                member=member_id, photos=photos, mode=mode, actor=uploads[0].uploaded_by
            ).outcomes
        except EnrolmentFailed as exc:
            outcomes = exc.outcomes
        except MemberNotFound:
            logger.info("Member %s was deleted before its uploads were processed.", member_id)
            continue
        except Exception:
            # Not left in "processing" for ever: the row says it failed, the log says why.
            PhotoUpload.objects.filter(pk__in=[u.pk for u in uploads]).update(
                status=PhotoUpload.Status.FAILED,
                code="internal_error",
                message="The photos could not be processed; see the worker log.",
                finished_at=timezone.now(),
            )
            raise
        for upload, outcome in zip(uploads, outcomes, strict=True):
            upload.status = PhotoUpload.Status.DONE if outcome.ok else PhotoUpload.Status.FAILED
            upload.code, upload.message = outcome.code or "", outcome.message or ""
            upload.face_id, upload.finished_at = outcome.face_id, timezone.now()
            staged, upload.file = upload.file.name or "", ""
            upload.save(update_fields=["status", "code", "message", "face", "finished_at", "file"])
            delete_files([staged], storage)
            summary["added" if outcome.ok else "failed"] += 1
    return summary
