"""Enrolment: creating members, adding and replacing their faces, editing and deleting them,
re-embedding them with another model.

Every write follows one order, so database locks are held for milliseconds:

1. the engine reads each photo, finds its largest face and embeds it (no database, no locks);
2. the accepted photos are written to MEDIA_ROOT under generated names;
3. one transaction locks the member row (``select_for_update``), writes the rows, updates the
   member's template and changes the gallery version token, so every worker's index notices.

Files of deleted faces are removed only after the transaction commits (``on_commit``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import numpy as np
from django.db import IntegrityError, transaction

from faceengine.errors import EngineError
from facesite import engine

from ..audit import audit_record
from ..errors import (
    DuplicateExternalId,
    InvalidInput,
    MemberNotFound,
)
from ..models import (
    AuditEntry,
    Embedding,
    FaceSample,
    Member,
    PhotoUpload,
    Template,
    vector_to_bytes,
)
from .files import delete_files, photo_field, store_files
from .gallery import (
    OutlierChange,
    bump_gallery_version,
    delete_faces_locked,
    external_id_taken,
    lock_member,
    member_id_of,
    outliers_refresh,
    template_rebuild,
    write_faces,
)
from .photos import PreparedPhoto, prepare_photos, raise_if_nothing_usable
from .results import (
    MODES,
    EnrolmentResult,
    PhotoOutcome,
    PhotoSource,
    Progress,
    RecomputeResult,
)

logger = logging.getLogger(__name__)


def member_create(
    *,
    display_name: str,
    photos: Sequence[PhotoSource] = (),
    external_id: str | None = None,
    notes: str = "",
    is_active: bool = True,
    progress: Progress | None = None,
    actor: Any = None,
) -> EnrolmentResult:
    """Create a member from enrolment photos (one face per photo: the largest).

    Photos without a face or that cannot be read are reported in ``result.outcomes``; when
    photos are given and none is usable, nothing is created and NoFace / InvalidImage is raised
    (carrying the outcomes). With no photos, a member without faces is created. ``actor`` (the
    user, or None for the system) is recorded in the audit log, as in every service here.
    """
    display_name = (display_name or "").strip()
    if not display_name:
        raise InvalidInput("A member needs a display name.")
    external_id = (external_id or "").strip() or None
    if external_id and external_id_taken(external_id):
        raise DuplicateExternalId(
            f"A member with external id {external_id!r} already exists.", details={"external_id": external_id}
        )
    photos = list(photos)
    outcomes: list[PhotoOutcome] = []
    prepared: list[PreparedPhoto] = []
    model_name, dim = "", 0
    if photos:
        recognizer = engine.recognizer()
        model_name, dim = recognizer.model_name, recognizer.dim
        outcomes, prepared = prepare_photos(photos, recognizer, progress)
        raise_if_nothing_usable(outcomes, prepared)
    names = store_files(prepared)
    try:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    member = Member.objects.create(
                        display_name=display_name, external_id=external_id, notes=notes or "", is_active=is_active
                    )
            except IntegrityError:
                raise DuplicateExternalId(
                    f"A member with external id {external_id!r} already exists.", details={"external_id": external_id}
                ) from None
            template, outliers = None, OutlierChange()
            if prepared:
                # Locking the fresh row costs nothing and keeps one rule for every template write.
                lock_member(member.pk)
                template, outliers = write_faces(member.pk, prepared, names, model_name, dim)
                bump_gallery_version(member.pk)
            audit_record(
                action=AuditEntry.Action.CREATE,
                member_id=member.pk,
                member_name=display_name,
                actor=actor,
                changes={
                    "display_name": display_name,
                    "external_id": external_id,
                    "is_active": is_active,
                    "face_ids": [o.face_id for o in outcomes if o.ok],
                    "model_name": model_name,
                    **outlier_changes(outliers),
                },
            )
    except Exception:
        delete_files(names)
        raise
    logger.info(
        "Member %s created with %d face(s); %d photo(s) refused.",
        member.pk,
        len(prepared),
        len(outcomes) - len(prepared),
    )
    return EnrolmentResult(
        member=member, outcomes=outcomes, model_name=model_name, template_count=template.count if template else 0
    )


def member_add_faces(
    *,
    member: Member | int,
    photos: Sequence[PhotoSource],
    mode: str = "average",
    progress: Progress | None = None,
    actor: Any = None,
) -> EnrolmentResult:
    """Add enrolment photos to a member.

    ``mode="average"`` folds the new faces into the template (add_embds); ``mode="replace"``
    drops every earlier face, file and template first (update_customs). If no photo is usable,
    NoFace / InvalidImage is raised and nothing changes, not even in replace mode.
    """
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {MODES}, got {mode!r}.")
    member_id = member_id_of(member)
    if not Member.objects.filter(pk=member_id).exists():
        raise MemberNotFound(f"No member with id {member_id}.", details={"member_id": member_id})
    photos = list(photos)
    if not photos:
        raise InvalidInput("No photos were given.")
    recognizer = engine.recognizer()
    outcomes, prepared = prepare_photos(photos, recognizer, progress)
    raise_if_nothing_usable(outcomes, prepared)
    names = store_files(prepared)
    try:
        with transaction.atomic():
            locked = lock_member(member_id)
            old_names: list[str] = []
            if mode == "replace":
                old_names = delete_faces_locked(member_id)
                # Every model's template described the old faces only.
                Template.objects.filter(member_id=member_id).delete()
            template, outliers = write_faces(member_id, prepared, names, recognizer.model_name, recognizer.dim)
            bump_gallery_version(member_id)
            audit_record(
                action=AuditEntry.Action.ADD_FACES,
                member_id=member_id,
                member_name=locked.display_name,
                actor=actor,
                changes={
                    "mode": mode,
                    "face_ids": [p.outcome.face_id for p in prepared],
                    "replaced_faces": len(old_names),
                    "model_name": recognizer.model_name,
                    **outlier_changes(outliers),
                },
            )
            if old_names:
                transaction.on_commit(partial(delete_files, old_names))
    except Exception:
        delete_files(names)
        raise
    logger.info(
        "Member %s: %d face(s) added (%s); %d photo(s) refused.",
        member_id,
        len(prepared),
        mode,
        len(outcomes) - len(prepared),
    )
    return EnrolmentResult(
        member=locked, outcomes=outcomes, model_name=recognizer.model_name, template_count=template.count
    )


_UNSET: Any = object()


def member_update(
    *,
    member: Member | int,
    display_name: str = _UNSET,
    external_id: str | None = _UNSET,
    notes: str = _UNSET,
    is_active: bool = _UNSET,
    actor: Any = None,
) -> Member:
    """Change a member's details; activating or deactivating changes the gallery."""
    member_id = member_id_of(member)
    with transaction.atomic():
        locked = lock_member(member_id)
        before = {name: getattr(locked, name) for name in ("display_name", "external_id", "notes", "is_active")}
        changed = []
        if display_name is not _UNSET:
            display_name = (display_name or "").strip()
            if not display_name:
                raise InvalidInput("A member needs a display name.")
            locked.display_name = display_name
            changed.append("display_name")
        if external_id is not _UNSET:
            locked.external_id = (external_id or "").strip() or None
            if locked.external_id and external_id_taken(locked.external_id, exclude_id=member_id):
                raise DuplicateExternalId(
                    f"A member with external id {locked.external_id!r} already exists.",
                    details={"external_id": locked.external_id},
                )
            changed.append("external_id")
        if notes is not _UNSET:
            locked.notes = notes or ""
            changed.append("notes")
        activity_changed = is_active is not _UNSET and bool(is_active) != locked.is_active
        if is_active is not _UNSET:
            locked.is_active = bool(is_active)
            changed.append("is_active")
        if changed:
            try:
                with transaction.atomic():
                    locked.save(update_fields=[*changed, "updated_at"])
            except IntegrityError:
                raise DuplicateExternalId(
                    f"A member with external id {locked.external_id!r} already exists.",
                    details={"external_id": locked.external_id},
                ) from None
        if activity_changed:
            bump_gallery_version(member_id)
        # Only the values that really changed: [before, after] each.
        diff = {
            name: [before[name], getattr(locked, name)] for name in changed if before[name] != getattr(locked, name)
        }
        if diff:
            audit_record(
                action=AuditEntry.Action.UPDATE,
                member_id=member_id,
                member_name=locked.display_name,
                actor=actor,
                changes=diff,
            )
    return locked


def member_delete(*, member: Member | int, actor: Any = None) -> None:
    """Delete a member with every face sample, embedding, template, upload and file.

    The gallery version changes in the same transaction, so no worker's next search can
    return the member; the files go once the deletion has committed.
    """
    member_id = member_id_of(member)
    with transaction.atomic():
        locked = lock_member(member_id)
        names = list(FaceSample.objects.filter(member_id=member_id).values_list("photo", flat=True))
        uploads = [n for n in PhotoUpload.objects.filter(member_id=member_id).values_list("file", flat=True) if n]
        snapshot = {"display_name": locked.display_name, "external_id": locked.external_id, "faces": len(names)}
        locked.delete()
        bump_gallery_version(member_id)
        audit_record(
            action=AuditEntry.Action.DELETE,
            member_id=member_id,
            member_name=locked.display_name,
            actor=actor,
            changes=snapshot,
        )
        transaction.on_commit(partial(delete_files, names + uploads))
    logger.info("Member %s deleted with %d face(s).", member_id, len(names))


def face_delete(*, faces: Iterable[FaceSample | int], actor: Any = None) -> int:
    """Delete face samples (their embeddings and files) and recompute the members' templates."""
    face_ids = {f.pk if isinstance(f, FaceSample) else int(f) for f in faces}
    by_member: dict[int, list[int]] = defaultdict(list)
    for face_id, member_id in FaceSample.objects.filter(pk__in=face_ids).values_list("id", "member_id"):
        by_member[member_id].append(face_id)
    deleted = 0
    # One member at a time, in id order: the same lock order in every transaction.
    for member_id in sorted(by_member):
        with transaction.atomic():
            try:
                locked = lock_member(member_id)
            except MemberNotFound:
                continue  # deleted meanwhile, faces and all
            models = set(Template.objects.filter(member_id=member_id).values_list("model_name", flat=True))
            models |= set(
                Embedding.objects.filter(face_id__in=by_member[member_id]).values_list("model_name", flat=True)
            )
            names = delete_faces_locked(member_id, by_member[member_id])
            deleted += len(names)
            # The remaining faces are compared with fewer others now: a flag may come or go.
            outliers = outliers_refresh(member_id)
            for model_name in models:
                template_rebuild(member_id, model_name)
            bump_gallery_version(member_id)
            audit_record(
                action=AuditEntry.Action.DELETE_FACES,
                member_id=member_id,
                member_name=locked.display_name,
                actor=actor,
                changes={"face_ids": sorted(by_member[member_id]), **outlier_changes(outliers)},
            )
            transaction.on_commit(partial(delete_files, names))
    return deleted


def outlier_changes(change: OutlierChange) -> dict[str, list[int]]:
    """The audit entry's note of faces flagged or cleared by a change (only what happened)."""
    notes = {"flagged_face_ids": change.flagged, "cleared_face_ids": change.cleared}
    return {key: ids for key, ids in notes.items() if ids}


def member_face_confirm(*, faces: Iterable[FaceSample | int], actor: Any = None) -> int:
    """Staff say flagged faces are the member after all: they go back into the templates and are
    never flagged again (status "confirmed"). Faces not flagged are left as they are; returns
    how many were confirmed."""
    face_ids = {f.pk if isinstance(f, FaceSample) else int(f) for f in faces}
    by_member: dict[int, list[int]] = defaultdict(list)
    flagged = FaceSample.objects.filter(pk__in=face_ids, status=FaceSample.Status.FLAGGED)
    for face_id, member_id in flagged.values_list("id", "member_id"):
        by_member[member_id].append(face_id)
    confirmed = 0
    for member_id in sorted(by_member):  # the lock order of every transaction
        with transaction.atomic():
            try:
                locked = lock_member(member_id)
            except MemberNotFound:
                continue
            # Re-read under the lock: a concurrent delete or confirm may have got there first.
            ids = list(
                FaceSample.objects.filter(
                    member_id=member_id, pk__in=by_member[member_id], status=FaceSample.Status.FLAGGED
                ).values_list("id", flat=True)
            )
            if not ids:
                continue
            FaceSample.objects.filter(pk__in=ids).update(status=FaceSample.Status.CONFIRMED)
            models = set(Embedding.objects.filter(face_id__in=ids).values_list("model_name", flat=True))
            for model_name in sorted(models):
                template_rebuild(member_id, model_name)
            bump_gallery_version(member_id)
            audit_record(
                action=AuditEntry.Action.CONFIRM_FACES,
                member_id=member_id,
                member_name=locked.display_name,
                actor=actor,
                changes={"face_ids": sorted(ids)},
            )
            confirmed += len(ids)
    return confirmed


def member_recompute_embeddings(
    *, member: Member | int, model_name: str | None = None, actor: Any = None
) -> RecomputeResult:
    """Embed every stored face of a member again with a model (the active one by default).

    For a model change: the stored landmarks are re-used (the face is the same), the new
    model's vectors are written beside the old model's, and its template is rebuilt.
    """
    from faceengine.recognizer import Face

    member_id = member_id_of(member)
    if not Member.objects.filter(pk=member_id).exists():
        raise MemberNotFound(f"No member with id {member_id}.", details={"member_id": member_id})
    recognizer = engine.recognizer(model_name)
    result = RecomputeResult(member_id=member_id, model_name=recognizer.model_name)
    storage = photo_field().storage
    vectors: dict[int, np.ndarray] = {}
    for face in FaceSample.objects.filter(member_id=member_id).order_by("id"):
        try:
            with storage.open(face.photo.name, "rb") as handle:
                rgb = recognizer.load(handle.read())
            found = Face(face.box, face.detection_score, np.asarray(face.landmarks, np.float32))
            vectors[face.pk] = recognizer.embed_faces(rgb, [found])[0]
        except (OSError, EngineError) as exc:
            result.failed.append(
                {"face_id": face.pk, "code": getattr(exc, "code", "file_missing"), "message": str(exc)}
            )
    with transaction.atomic():
        locked = lock_member(member_id)
        alive = set(FaceSample.objects.filter(member_id=member_id, pk__in=list(vectors)).values_list("id", flat=True))
        for face_id in alive:
            Embedding.objects.update_or_create(
                face_id=face_id,
                model_name=recognizer.model_name,
                defaults={"dim": recognizer.dim, "vector": vector_to_bytes(vectors[face_id])},
            )
        # The outlier check again, with the new model's vectors and its own 1:1 threshold.
        outliers = outliers_refresh(member_id, recognizer.model_name)
        template = template_rebuild(member_id, recognizer.model_name)
        bump_gallery_version(member_id)
        audit_record(
            action=AuditEntry.Action.RECOMPUTE,
            member_id=member_id,
            member_name=locked.display_name,
            actor=actor,
            changes={
                "model_name": recognizer.model_name,
                "embedded": len(alive),
                "failed": [f["face_id"] for f in result.failed],
                "flagged": outliers.flagged,
                "cleared": outliers.cleared,
            },
        )
    result.embedded = len(alive)
    result.template_count = template.count if template else 0
    return result
