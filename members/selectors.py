"""Reads: members, names, and the per-process gallery index of the active model.

The index is cached per worker process and rebuilt when the gallery version token in the
database differs from the one it was built at. The token is read *before* the rows, so an index
can only be newer than its token, never older: a change committed during a build makes the next
search rebuild again, and no search after a committed add or delete can miss it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Count, Q, QuerySet

from faceengine.index import GalleryIndex, IndexConfig

from .errors import InvalidInput, MemberNotFound, NoTemplate
from .models import (
    VECTOR_DTYPE,
    AuditEntry,
    Embedding,
    FaceSample,
    GalleryVersion,
    Member,
    Template,
)

logger = logging.getLogger(__name__)

MATCH_MODES = ("template", "sample")

# Defaults of the FACESITE_GALLERY settings block; any key may be overridden there.
GALLERY_DEFAULTS = {
    # "template": one mean vector per member; "sample": every enrolment face (nearest sample),
    # which accepts about twice as many strangers at the same threshold.
    "MATCH": "template",
    # None: the threshold calibrated for the gallery's size (see identification_bar); a number
    # fixes it for every gallery size.
    "IDENTIFICATION_THRESHOLD": None,
    # The target share of strangers' faces named as somebody, per face.
    "FALSE_ACCEPT_RATE": 0.01,
    "TOP_K": 3,
    "INDEX_BACKEND": "auto",  # auto | numpy | faiss | hnsw
    "FAISS_MIN_SIZE": IndexConfig.faiss_min_size,
    "HNSW_MIN_SIZE": IndexConfig.hnsw_min_size,
    "HNSW_M": IndexConfig.hnsw_m,
    "HNSW_EF_CONSTRUCTION": IndexConfig.hnsw_ef_construction,
    "HNSW_EF_SEARCH": IndexConfig.hnsw_ef_search,
}


def gallery_settings() -> dict:
    return {**GALLERY_DEFAULTS, **getattr(settings, "FACESITE_GALLERY", {})}


def index_config() -> IndexConfig:
    config = gallery_settings()
    return IndexConfig(
        backend=config["INDEX_BACKEND"],
        faiss_min_size=int(config["FAISS_MIN_SIZE"]),
        hnsw_min_size=int(config["HNSW_MIN_SIZE"]),
        hnsw_m=int(config["HNSW_M"]),
        hnsw_ef_construction=int(config["HNSW_EF_CONSTRUCTION"]),
        hnsw_ef_search=int(config["HNSW_EF_SEARCH"]),
    )


@dataclass(frozen=True)
class IdentificationBar:
    """The 1:N threshold in use for a gallery, and why.

    ``basis`` is "calibrated" (from the model's impostor scores, the gallery size and the target
    false-accept rate), "setting" (FACESITE_IDENTIFICATION_THRESHOLD) or "model" (a model without
    a calibration: its fixed ``identification_threshold``). ``false_accept_rate`` is the estimated
    share of strangers' faces named as somebody at this threshold (None without a calibration).
    """

    threshold: float
    gallery_size: int
    match: str
    basis: str
    false_accept_rate: float | None
    target_false_accept_rate: float | None

    def to_dict(self) -> dict:
        return {
            "threshold": round(self.threshold, 4),
            "gallery_size": self.gallery_size,
            "match": self.match,
            "basis": self.basis,
            "false_accept_rate": None if self.false_accept_rate is None else float(f"{self.false_accept_rate:.3g}"),
            "target_false_accept_rate": self.target_false_accept_rate,
        }


def identification_bar(
    *, model_name: str | None = None, gallery_size: int | None = None, match: str | None = None
) -> IdentificationBar:
    """The 1:N threshold for the active gallery of a model (the configured one by default).

    ``gallery_size`` is the number of vectors searched (members for template matching, enrolment
    faces for sample matching); it is counted in the database when not given.
    """
    from faceengine.errors import ModelError
    from facesite.engine import active_model_spec, model_calibration

    config = gallery_settings()
    match = match or config["MATCH"]
    override = config["IDENTIFICATION_THRESHOLD"]
    target = float(config["FALSE_ACCEPT_RATE"])
    try:
        spec = active_model_spec(model_name)
    except ModelError:
        if override is None or gallery_size is None:
            raise
        spec = None  # a fixed threshold and a known size need nothing of the model
    calibration = None
    if spec is not None:
        if gallery_size is None:
            gallery_size = gallery_vector_count(model_name=spec.name, dim=spec.dim, match=match)
        calibration = model_calibration(spec.name)
        if calibration is not None and calibration.dim != spec.dim:
            calibration = None  # measured for another model of the same name: never mix them
    size = int(gallery_size or 0)
    if override is not None:
        threshold, basis = float(override), "setting"
    elif calibration is not None:
        threshold, basis = calibration.threshold(size, target, match), "calibrated"
    elif spec is not None:
        threshold, basis = float(spec.identification_threshold), "model"
    else:  # unreachable: without an override the model's description was read
        raise AssertionError("no threshold")
    estimate = calibration.false_accept_rate(threshold, size, match) if calibration is not None else None
    return IdentificationBar(threshold, size, match, basis, estimate, target if basis == "calibrated" else None)


def identification_threshold(*, model_name: str | None = None) -> float:
    """The 1:N cosine threshold in use now (see ``identification_bar``)."""
    return identification_bar(model_name=model_name).threshold


def gallery_vector_count(*, model_name: str, dim: int, match: str = "template") -> int:
    """How many vectors a search of this model's active gallery compares a face with."""
    if match == "sample":
        return Embedding.objects.filter(model_name=model_name, dim=dim, face__member__is_active=True).count()
    return Template.objects.filter(model_name=model_name, dim=dim, count__gt=0, member__is_active=True).count()


# --------------------------------------------------------------------------------- members


def member_get(*, member_id: int) -> Member:
    try:
        return Member.objects.get(pk=member_id)
    except (Member.DoesNotExist, ValueError, TypeError):
        raise MemberNotFound(f"No member with id {member_id!r}.", details={"member_id": member_id}) from None


def member_template_vector(*, member_id: int, model_name: str, dim: int) -> np.ndarray:
    """The member's template of this model and dimension, normalised (float64)."""
    if not Member.objects.filter(pk=member_id).exists():
        raise MemberNotFound(f"No member with id {member_id}.", details={"member_id": member_id})
    template = Template.objects.filter(member_id=member_id, model_name=model_name, dim=dim, count__gt=0).first()
    if template is None:
        raise NoTemplate(f"Member {member_id} has no enrolled face for the model {model_name}.")
    vector = template.as_array().astype(np.float64)
    return vector / (np.linalg.norm(vector) or 1.0)


def member_list(*, search: str | None = None, active: bool | None = None) -> QuerySet[Member]:
    members = Member.objects.annotate(face_count=Count("faces", distinct=True))
    if search:
        members = members.filter(Q(display_name__icontains=search) | Q(external_id__iexact=search))
    if active is not None:
        members = members.filter(is_active=active)
    return members.order_by("display_name", "id")


def member_names(ids: Iterable[int]) -> dict[int, str]:
    """Display names by member id; ids that no longer exist are simply absent."""
    wanted = {int(i) for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(Member.objects.filter(pk__in=wanted).values_list("id", "display_name"))


def member_faces(*, member: Member | int) -> QuerySet[FaceSample]:
    member_id = member.pk if isinstance(member, Member) else int(member)
    return FaceSample.objects.filter(member_id=member_id).order_by("id")


# --------------------------------------------------------------------------------- gallery

_cache: dict[tuple[str, int, str], tuple[str, GalleryIndex]] = {}
_cache_lock = threading.Lock()


def audit_entries_for_member(*, member_id: int) -> QuerySet[AuditEntry]:
    """The member's audit log, newest first (it outlives the member: entries keep the id)."""
    return AuditEntry.objects.filter(member_id=member_id).select_related("actor").order_by("-created_at", "-id")


def gallery_version() -> str:
    """The current gallery token ("" before the first change)."""
    return GalleryVersion.objects.filter(pk=1).values_list("token", flat=True).first() or ""


def clear_gallery_cache() -> None:
    """Forget every cached index of this process (tests; a process that restores a database)."""
    with _cache_lock:
        _cache.clear()


def gallery_for_model(*, model_name: str, dim: int, match: str | None = None) -> GalleryIndex:
    """The process-cached index of active members' vectors for one model; labels are member ids.

    ``match`` is "template" (one mean vector per member, the default) or "sample" (every
    enrolment face; results still name each member once, with its best face).
    """
    match = match or gallery_settings()["MATCH"]
    if match not in MATCH_MODES:
        raise InvalidInput(f"match must be one of {MATCH_MODES}, got {match!r}.")
    key = (model_name, int(dim), match)
    token = gallery_version()
    cached = _cache.get(key)
    if cached is not None and cached[0] == token:
        return cached[1]
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == token:
            return cached[1]
        started = time.perf_counter()
        labels, vectors = _gallery_rows(model_name, int(dim), match)
        index = GalleryIndex(model_name, int(dim), labels, vectors, config=index_config())
        _cache[key] = (token, index)
        logger.info(
            "Gallery index for %s (%s) rebuilt: %d vectors, %s backend, %.3f s",
            model_name,
            match,
            len(index),
            index.backend,
            time.perf_counter() - started,
        )
        return index


def _gallery_rows(model_name: str, dim: int, match: str) -> tuple[list[int], np.ndarray]:
    rows: QuerySet[Any, tuple[int, bytes | memoryview]]
    if match == "template":
        rows = (
            Template.objects.filter(model_name=model_name, dim=dim, count__gt=0, member__is_active=True)
            .order_by("member_id")
            .values_list("member_id", "vector")
        )
    else:
        rows = (
            Embedding.objects.filter(model_name=model_name, dim=dim, face__member__is_active=True)
            .order_by("face__member_id", "id")
            .values_list("face__member_id", "vector")
        )
    labels: list[int] = []
    chunks: list[bytes] = []
    for member_id, vector in rows.iterator(chunk_size=5000):
        data = bytes(vector)
        if len(data) != dim * VECTOR_DTYPE.itemsize:
            logger.warning(
                "Skipping a %s vector of member %s with %d bytes (expected %d-d).",
                model_name,
                member_id,
                len(data),
                dim,
            )
            continue
        labels.append(member_id)
        chunks.append(data)
    vectors = np.frombuffer(b"".join(chunks), dtype=VECTOR_DTYPE).reshape(len(labels), dim)
    return labels, vectors.astype(np.float32)
