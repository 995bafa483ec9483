"""Reads: members, names, and the per-process gallery index of the active model.

The index is cached per worker process with the gallery change-log position it is current to;
before a search it applies the changes committed since (``gallery_cached``), so a change reaches
every worker's next search without a rebuild. A starting process loads the shared snapshot
(members.snapshots) and applies the log from its position, instead of reading every row.
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
    GalleryChange,
    GalleryLogHead,
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
    "INDEX_BACKEND": "auto",  # auto | numpy | ivf | ivf_sq8 | faiss | hnsw
    "IVF_MIN_SIZE": IndexConfig.ivf_min_size,
    "IVF_NLIST": IndexConfig.ivf_nlist,
    "IVF_NPROBE": IndexConfig.ivf_nprobe,
    "FAISS_MIN_SIZE": IndexConfig.faiss_min_size,  # None: exact FAISS only when chosen
    "HNSW_MIN_SIZE": IndexConfig.hnsw_min_size,  # None: HNSW only when chosen
    "HNSW_M": IndexConfig.hnsw_m,
    "HNSW_EF_CONSTRUCTION": IndexConfig.hnsw_ef_construction,
    "HNSW_EF_SEARCH": IndexConfig.hnsw_ef_search,
    "HNSW_COMPACT_FRACTION": IndexConfig.hnsw_compact_fraction,
}


def gallery_settings() -> dict:
    return {**GALLERY_DEFAULTS, **getattr(settings, "FACESITE_GALLERY", {})}


def index_config() -> IndexConfig:
    config = gallery_settings()
    optional = {key: None if config[key] is None else int(config[key]) for key in ("FAISS_MIN_SIZE", "HNSW_MIN_SIZE")}
    return IndexConfig(
        backend=config["INDEX_BACKEND"],
        ivf_min_size=int(config["IVF_MIN_SIZE"]),
        ivf_nlist=int(config["IVF_NLIST"]),
        ivf_nprobe=int(config["IVF_NPROBE"]),
        faiss_min_size=optional["FAISS_MIN_SIZE"],
        hnsw_min_size=optional["HNSW_MIN_SIZE"],
        hnsw_m=int(config["HNSW_M"]),
        hnsw_ef_construction=int(config["HNSW_EF_CONSTRUCTION"]),
        hnsw_ef_search=int(config["HNSW_EF_SEARCH"]),
        hnsw_compact_fraction=float(config["HNSW_COMPACT_FRACTION"]),
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
        return _sample_embeddings(model_name, dim).count()
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


def audit_entries_for_member(*, member_id: int) -> QuerySet[AuditEntry]:
    """The member's audit log, newest first (it outlives the member: entries keep the id)."""
    return AuditEntry.objects.filter(member_id=member_id).select_related("actor").order_by("-created_at", "-id")


def gallery_version() -> str:
    """The current gallery token ("" before the first change)."""
    return GalleryVersion.objects.filter(pk=1).values_list("token", flat=True).first() or ""


@dataclass(frozen=True)
class LogHead:
    """The committed head of the gallery change log: every change up to ``seq`` is committed."""

    seq: int
    pruned_through: int
    epoch: str


def gallery_log_head() -> LogHead:
    row = GalleryLogHead.objects.filter(pk=1).values_list("seq", "pruned_through", "epoch").first()
    return LogHead(0, 0, "") if row is None else LogHead(int(row[0]), int(row[1]), str(row[2]))


@dataclass
class CachedGallery:
    """A process's index of one gallery and the change-log position it is current to."""

    index: GalleryIndex
    seq: int
    epoch: str
    source: str  # "database" or "snapshot", where the index was first built from


_cache: dict[tuple[str, int, str], CachedGallery] = {}
_cache_lock = threading.Lock()
# More changed members than this share of the gallery at once: a rebuild is cheaper.
_REBUILD_SHARE = 0.2
_MEMBERS_PER_QUERY = 2000


def clear_gallery_cache() -> None:
    """Forget every cached index of this process (tests; a process that restores a database)."""
    with _cache_lock:
        _cache.clear()


def gallery_for_model(*, model_name: str, dim: int, match: str | None = None) -> GalleryIndex:
    """The process-cached index of active members' vectors for one model; labels are member ids.

    ``match`` is "template" (one mean vector per member, the default) or "sample" (every
    enrolment face; results still name each member once, with its best face).
    """
    return gallery_cached(model_name=model_name, dim=dim, match=match).index


def gallery_cached(*, model_name: str, dim: int, match: str | None = None) -> CachedGallery:
    """``gallery_for_model`` with the log position of the index.

    The log head is read *before* anything else, and the changes after the index's position
    are applied before the search: every change up to the head is committed (the head is
    handed out in commit order, members.services.gallery_log), so no search that starts after
    a committed change misses it. Members' rows are read after the head, so the index can only
    be newer than its position, never older; re-applying a newer change is harmless (it
    re-reads the member's current rows).
    """
    match = match or gallery_settings()["MATCH"]
    if match not in MATCH_MODES:
        raise InvalidInput(f"match must be one of {MATCH_MODES}, got {match!r}.")
    key = (model_name, int(dim), match)
    head = gallery_log_head()
    cached = _cache.get(key)
    if cached is not None and (cached.epoch, cached.seq) == (head.epoch, head.seq):
        return cached
    with _cache_lock:
        cached = _cache.get(key)
        if cached is None:
            cached = _load_snapshot(key, head) or _build(key)
        if (cached.epoch, cached.seq) != (head.epoch, head.seq):
            cached = _catch_up(key, cached, head)
        _cache[key] = cached
        return cached


def _build(key: tuple[str, int, str]) -> CachedGallery:
    """The index read whole from the database, at the log head read before the rows."""
    model_name, dim, match = key
    started = time.perf_counter()
    head = gallery_log_head()
    labels, ids, vectors = _gallery_rows(model_name, dim, match)
    index = GalleryIndex(model_name, dim, labels, vectors, ids=ids, config=index_config())
    logger.info(
        "Gallery index for %s (%s) built from the database: %d vectors, %s backend, %.3f s",
        model_name,
        match,
        len(index),
        index.backend,
        time.perf_counter() - started,
    )
    return CachedGallery(index, head.seq, head.epoch, "database")


def _load_snapshot(key: tuple[str, int, str], head: LogHead) -> CachedGallery | None:
    """The index of the shared snapshot, when there is a usable one; None otherwise."""
    from faceengine.snapshot import SnapshotError, read_snapshot

    from .snapshots import snapshot_path

    model_name, dim, match = key
    path = snapshot_path(model_name, dim, match)
    if not path.exists():
        return None
    started = time.perf_counter()
    try:
        index, info = read_snapshot(path, model_name=model_name, dim=dim, match=match, config=index_config())
    except (SnapshotError, OSError) as exc:
        logger.warning("Gallery snapshot %s not used (%s); building from the database.", path, exc)
        return None
    config = index_config()
    if config.backend not in ("auto", index.backend):
        logger.warning(
            "Gallery snapshot %s holds a %s index, the setting asks for %s; building from the database.",
            path,
            index.backend,
            config.backend,
        )
        return None
    # Of another log (the database was emptied or restored since), or older than what the
    # log still holds, or from a future the database does not have: the database decides.
    if info.epoch != head.epoch or info.seq < head.pruned_through or info.seq > head.seq:
        logger.warning(
            "Gallery snapshot %s (log %s at %d) does not fit the change log (%s at %d, pruned through %d); "
            "building from the database.",
            path,
            info.epoch,
            info.seq,
            head.epoch,
            head.seq,
            head.pruned_through,
        )
        return None
    logger.info(
        "Gallery index for %s (%s) loaded from %s: %d vectors at change %d, %.3f s",
        model_name,
        match,
        path,
        len(index),
        info.seq,
        time.perf_counter() - started,
    )
    return CachedGallery(index, info.seq, info.epoch, "snapshot")


def _catch_up(key: tuple[str, int, str], cached: CachedGallery, head: LogHead) -> CachedGallery:
    """Apply the log's changes after the index's position, or rebuild where they cannot be."""
    model_name, dim, match = key
    if cached.epoch != head.epoch or cached.seq > head.seq:
        return _build(key)  # another log: the database was emptied or restored
    changed = list(
        GalleryChange.objects.filter(seq__gt=cached.seq, seq__lte=head.seq).values_list("member_id", flat=True)
    )
    # Read after the entries: a pruning committed its mark before deleting any of them.
    if gallery_log_head().pruned_through > cached.seq:
        return _build(key)  # entries this index needs are gone
    members = {m for m in changed if m is not None}
    if None in changed or len(members) > max(100, _REBUILD_SHARE * len(cached.index)):
        return _build(key)
    ordered = sorted(members)
    for start in range(0, len(ordered), _MEMBERS_PER_QUERY):
        chunk = ordered[start : start + _MEMBERS_PER_QUERY]
        labels, ids, vectors = _gallery_rows(model_name, dim, match, member_ids=chunk)
        cached.index.replace_labels(chunk, labels, ids, vectors)
    if cached.index.needs_rebuild():
        return _build(key)
    return CachedGallery(cached.index, head.seq, head.epoch, cached.source)


def _sample_embeddings(model_name: str, dim: int) -> QuerySet[Embedding]:
    """The faces nearest-sample matching compares with: those of active members, less the ones
    flagged as unlike the member's other faces (out of the template too, until confirmed)."""
    return Embedding.objects.filter(model_name=model_name, dim=dim, face__member__is_active=True).exclude(
        face__status=FaceSample.Status.FLAGGED
    )


def _gallery_rows(
    model_name: str, dim: int, match: str, member_ids: list[int] | None = None
) -> tuple[list[int], list[int], np.ndarray]:
    """(member ids, vector ids, vectors) of the active gallery, or of some members of it.
    Vector ids are member ids for templates and embedding ids for samples."""
    rows: QuerySet[Any, tuple[int, int, bytes | memoryview]]
    if match == "template":
        rows = (
            Template.objects.filter(model_name=model_name, dim=dim, count__gt=0, member__is_active=True)
            .order_by("member_id")
            .values_list("member_id", "member_id", "vector")
        )
        if member_ids is not None:
            rows = rows.filter(member_id__in=member_ids)
    else:
        rows = (
            _sample_embeddings(model_name, dim)
            .order_by("face__member_id", "id")
            .values_list("face__member_id", "id", "vector")
        )
        if member_ids is not None:
            rows = rows.filter(face__member_id__in=member_ids)
    labels: list[int] = []
    ids: list[int] = []
    chunks: list[bytes] = []
    blocks: list[np.ndarray] = []
    for member_id, vector_id, vector in rows.iterator(chunk_size=5000):
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
        ids.append(vector_id)
        chunks.append(data)
        if len(chunks) == 5000:
            # Into an array per block: a million small bytes objects at once would leave the
            # process ~0.8 GB bigger after the build (heap fragmentation).
            blocks.append(np.frombuffer(b"".join(chunks), dtype=VECTOR_DTYPE).astype(np.float32))
            chunks.clear()
    blocks.append(np.frombuffer(b"".join(chunks), dtype=VECTOR_DTYPE).astype(np.float32))
    return labels, ids, np.concatenate(blocks).reshape(len(labels), dim)
