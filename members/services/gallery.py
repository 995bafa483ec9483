"""Locked writes of the gallery: the member row lock, templates, face rows, the version token
and the change log.

Every function here expects its caller to hold the member row (``lock_member``) inside a
transaction; the gallery version changes last, so every worker's index notices the commit.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import IntegrityError, transaction
from django.utils import timezone

from faceengine.errors import ModelError
from faceengine.index import normalize_rows
from faceengine.quality import FaceQuality
from facesite import engine

from ..errors import (
    MemberNotFound,
)
from ..models import (
    Embedding,
    FaceSample,
    GalleryVersion,
    Member,
    Template,
    vector_from_bytes,
    vector_to_bytes,
)
from .gallery_log import log_changes
from .photos import PreparedPhoto

logger = logging.getLogger(__name__)

# A face is compared with the mean of at least this many other faces of its member: against
# one other face, which of the two is the wrong one cannot be told.
MIN_OTHERS = 2


def external_id_taken(external_id: str, *, exclude_id: int | None = None) -> bool:
    """Whether another member has this external id. One rule on every database: ids compare
    case-insensitively ("E17" and "e17" are the same person), as MySQL's collation does anyway;
    SQLite's unique index alone would let both in."""
    members = Member.objects.filter(external_id__iexact=external_id)
    if exclude_id is not None:
        members = members.exclude(pk=exclude_id)
    return members.exists()


def member_id_of(member: Member | int) -> int:
    if isinstance(member, Member):
        if member.pk is None:
            raise MemberNotFound("The member has not been saved.")
        return member.pk
    try:
        return int(member)
    except (TypeError, ValueError):
        raise MemberNotFound(f"No member with id {member!r}.", details={"member_id": str(member)}) from None


def lock_member(member_id: int) -> Member:
    """The member row, locked until the transaction ends; the serialisation point of all writes."""
    member = Member.objects.select_for_update().filter(pk=member_id).first()
    if member is None:
        raise MemberNotFound(f"No member with id {member_id}.", details={"member_id": member_id})
    return member


def bump_gallery_version(*member_ids: int) -> int:
    """Change the version token and log the change of these members' vectors (none given:
    anything may have changed, every worker rebuilds). The last writes of a transaction, so
    their rows are locked only until the commit; returns the change's log sequence number."""
    token, now = uuid.uuid4().hex, timezone.now()
    if not GalleryVersion.objects.filter(pk=1).update(token=token, changed_at=now):
        try:
            with transaction.atomic():
                GalleryVersion.objects.create(pk=1, token=token)
        except IntegrityError:
            GalleryVersion.objects.filter(pk=1).update(token=token, changed_at=now)
    return log_changes(member_ids or None)


def _locked_template(member_id: int, model_name: str) -> Template | None:
    """The member's template for a model; call only with the member row locked."""
    return Template.objects.select_for_update().filter(member_id=member_id, model_name=model_name).first()


def template_add(member_id: int, model_name: str, dim: int, vectors: np.ndarray) -> Template:
    """Fold new normalised embeddings into the running mean (member row locked)."""
    vectors = normalize_rows(np.asarray(vectors, np.float32).reshape(-1, dim)).astype(np.float64)
    template = _locked_template(member_id, model_name)
    if template is None or template.count == 0 or template.dim != dim:
        mean, count = vectors.mean(axis=0), len(vectors)
    else:
        old = template.as_array().astype(np.float64)
        count = template.count + len(vectors)
        mean = (old * template.count + vectors.sum(axis=0)) / count
    if template is None:
        template = Template(member_id=member_id, model_name=model_name)
    template.dim, template.count = dim, count
    template.vector = vector_to_bytes(mean.astype(np.float32))
    template.save()
    return template


def template_rebuild(member_id: int, model_name: str) -> Template | None:
    """Recompute a template from the member's stored embeddings (member row locked); flagged
    faces (``outliers_refresh``) are left out until staff confirm them."""
    rows = list(
        Embedding.objects.filter(face__member_id=member_id, model_name=model_name)
        .exclude(face__status=FaceSample.Status.FLAGGED)
        .order_by("id")
        .values_list("dim", "vector")
    )
    dims = {dim for dim, _ in rows}
    if not rows or len(dims) != 1:
        if len(dims) > 1:
            logger.error(
                "Member %s has %s embeddings of several dimensions %s; template dropped.",
                member_id,
                model_name,
                sorted(dims),
            )
        Template.objects.filter(member_id=member_id, model_name=model_name).delete()
        return None
    dim = dims.pop()
    vectors = normalize_rows(np.stack([vector_from_bytes(v, dim) for _, v in rows])).astype(np.float64)
    template, _ = Template.objects.update_or_create(
        member_id=member_id,
        model_name=model_name,
        defaults={
            "dim": dim,
            "count": len(vectors),
            "vector": vector_to_bytes(vectors.mean(axis=0).astype(np.float32)),
        },
    )
    return template


@dataclass
class OutlierChange:
    """What one ``outliers_refresh`` changed: faces newly flagged, and flagged faces cleared."""

    model_name: str = ""
    flagged: list[int] = field(default_factory=list)
    cleared: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.flagged or self.cleared)


def outlier_threshold(model_name: str) -> float | None:
    """The model's 1:1 threshold, or None for a model this server has no description of (no
    threshold means nothing is flagged: a bar of another model would mean nothing)."""
    try:
        return float(engine.active_model_spec(model_name).verification_threshold)
    except ModelError:
        return None


def leave_one_out(vectors: np.ndarray) -> np.ndarray:
    """Each row's cosine to the mean of the other rows (NaN with fewer than 2 others)."""
    vectors = normalize_rows(np.asarray(vectors, np.float32)).astype(np.float64)
    out = np.full(len(vectors), np.nan)
    if len(vectors) < MIN_OTHERS + 1:
        return out
    total = vectors.sum(axis=0)
    for i, vector in enumerate(vectors):
        rest = total - vector
        norm = float(np.linalg.norm(rest))
        out[i] = float(vector @ rest) / norm if norm > 0 else 1.0
    return out


def outliers_refresh(member_id: int, model_name: str | None = None) -> OutlierChange:
    """Compare every face of a member with the mean of its other faces (leave-one-out, with
    the active model by default) and flag the ones below the model's 1:1 threshold; a flagged
    face that now matches is cleared. Confirmed faces keep their status. Member row locked;
    rebuild the template afterwards when something changed."""
    model_name = model_name or engine.engine_settings()["MODEL"]
    change = OutlierChange(model_name=model_name)
    threshold = outlier_threshold(model_name)
    rows = list(
        Embedding.objects.filter(face__member_id=member_id, model_name=model_name)
        .order_by("face_id")
        .values_list("face_id", "dim", "vector", "face__status")
    )
    if threshold is None or not rows or len({dim for _, dim, _, _ in rows}) != 1:
        return change
    similarities = leave_one_out(np.stack([vector_from_bytes(v, dim) for _, dim, v, _ in rows]))
    for (face_id, _, _, status), similarity in zip(rows, similarities, strict=True):
        known = not np.isnan(similarity)
        new_status = status
        if status != FaceSample.Status.CONFIRMED:
            new_status = FaceSample.Status.FLAGGED if known and similarity < threshold else FaceSample.Status.OK
        if new_status == FaceSample.Status.FLAGGED and status != new_status:
            change.flagged.append(face_id)
        elif status == FaceSample.Status.FLAGGED and new_status != status:
            change.cleared.append(face_id)
        FaceSample.objects.filter(pk=face_id).update(
            status=new_status,
            outlier_similarity=round(float(similarity), 4) if known else None,
            outlier_model=model_name if known else "",
        )
    return change


def write_faces(
    member_id: int, prepared: list[PreparedPhoto], names: list[str], model_name: str, dim: int
) -> tuple[Template, OutlierChange]:
    """Rows for the accepted photos, the outlier check and the template update (member row
    locked); returns the template and the faces the check flagged or cleared."""
    for item, name in zip(prepared, names, strict=True):
        face = FaceSample.objects.create(
            member_id=member_id,
            photo=name,
            image_width=item.width,
            image_height=item.height,
            box_x=item.box[0],
            box_y=item.box[1],
            box_w=item.box[2],
            box_h=item.box[3],
            landmarks=[[float(x), float(y)] for x, y in item.landmarks],
            detection_score=item.score,
            detection=item.detection,
            detector=item.detector,
            **quality_fields(item.quality),
        )
        Embedding.objects.create(face=face, model_name=model_name, dim=dim, vector=vector_to_bytes(item.embedding))
        item.outcome.ok, item.outcome.face_id = True, face.pk
        item.outcome.warnings = list(item.quality.warnings) if item.quality else []
    change = outliers_refresh(member_id, model_name)
    flagged = set(
        FaceSample.objects.filter(member_id=member_id, status=FaceSample.Status.FLAGGED).values_list("id", flat=True)
    )
    for item in prepared:
        item.outcome.flagged = item.outcome.face_id in flagged
    if change or flagged:
        # Faces left out (or back in): the running mean cannot drop a face, so rebuild.
        template = template_rebuild(member_id, model_name)
        if template is None:
            # Every face of the member is flagged: no template, the member is not identified.
            template = Template(member_id=member_id, model_name=model_name, dim=dim, count=0)
        return template, change
    return template_add(member_id, model_name, dim, np.stack([p.embedding for p in prepared])), change


def quality_fields(quality: FaceQuality | None) -> dict[str, Any]:
    """The FaceSample fields of a quality record (all unknown for None)."""
    if quality is None:
        return {}
    return {
        "eye_distance": round(quality.eye_distance, 2),
        "sharpness": round(quality.sharpness, 2),
        "yaw": round(quality.yaw, 2),
        "pitch": round(quality.pitch, 2),
        "roll": round(quality.roll, 2),
        "quality_warnings": list(quality.warnings),
    }


def delete_faces_locked(member_id: int, face_ids: Iterable[int] | None = None) -> list[str]:
    """Delete faces (all of the member's when ``face_ids`` is None); returns their file names."""
    faces = FaceSample.objects.filter(member_id=member_id)
    if face_ids is not None:
        faces = faces.filter(pk__in=list(face_ids))
    names = list(faces.values_list("photo", flat=True))
    faces.delete()
    return names
