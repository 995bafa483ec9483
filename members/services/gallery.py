"""Locked writes of the gallery: the member row lock, templates, face rows and the version token.

Every function here expects its caller to hold the member row (``lock_member``) inside a
transaction; the gallery version changes last, so every worker's index notices the commit.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

import numpy as np
from django.db import IntegrityError, transaction
from django.utils import timezone

from faceengine.index import normalize_rows

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
from .photos import PreparedPhoto

logger = logging.getLogger(__name__)


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


def bump_gallery_version() -> None:
    """Change the token every worker compares its cached index with (last write of a transaction,
    so the row is locked only until the commit)."""
    token, now = uuid.uuid4().hex, timezone.now()
    if GalleryVersion.objects.filter(pk=1).update(token=token, changed_at=now):
        return
    try:
        with transaction.atomic():
            GalleryVersion.objects.create(pk=1, token=token)
    except IntegrityError:
        GalleryVersion.objects.filter(pk=1).update(token=token, changed_at=now)


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
    """Recompute a template from the member's stored embeddings (member row locked)."""
    rows = list(
        Embedding.objects.filter(face__member_id=member_id, model_name=model_name)
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


def write_faces(member_id: int, prepared: list[PreparedPhoto], names: list[str], model_name: str, dim: int) -> Template:
    """Rows for the accepted photos and the template update (member row locked)."""
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
        )
        Embedding.objects.create(face=face, model_name=model_name, dim=dim, vector=vector_to_bytes(item.embedding))
        item.outcome.ok, item.outcome.face_id = True, face.pk
    return template_add(member_id, model_name, dim, np.stack([p.embedding for p in prepared]))


def delete_faces_locked(member_id: int, face_ids: Iterable[int] | None = None) -> list[str]:
    """Delete faces (all of the member's when ``face_ids`` is None); returns their file names."""
    faces = FaceSample.objects.filter(member_id=member_id)
    if face_ids is not None:
        faces = faces.filter(pk__in=list(face_ids))
    names = list(faces.values_list("photo", flat=True))
    faces.delete()
    return names
