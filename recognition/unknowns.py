"""Writes of unknown people: the unknown faces of finished jobs, their clusters, naming them,
merge, split, dismiss, and retention.

Flow: ``job_run`` stores each unknown face (vector + crop) with ``unknown_faces_store`` in the
transaction that writes the result, and queues ``recognition.tasks.cluster_unknown_faces``
after the commit; that task runs ``unknown_faces_cluster`` (faceengine.clustering, one model
at a time). Naming a cluster (``cluster_assign``) sends each face's crop of the job photo
through the members' enrolment uploads (audited with the actor), then forgets the faces: they
are no longer unknown. ``unknown_faces_purge`` deletes what is older than
FACESITE_UNKNOWN_RETENTION_DAYS.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from faceengine.clustering import ClusterConfig, cluster_incremental, representative_index
from faceengine.errors import FacesiteError
from facesite.engine import active_model_spec
from facesite.files import stored_name
from recognition.models import RecognitionJob, UnknownCluster, UnknownFace, VideoJob

logger = logging.getLogger(__name__)

CROP_SIZE = 112


class UnknownError(FacesiteError):
    code = "invalid_input"


class ClusterNotFound(UnknownError):
    code = "cluster_not_found"
    http_status = 404


def vector_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, "<f4").tobytes()


def vector_array(face: UnknownFace) -> np.ndarray:
    return np.frombuffer(bytes(face.vector), "<f4", count=face.dim)


def cluster_config(model_name: str) -> ClusterConfig:
    """The cut of the model (faceengine.clustering.ClusterConfig.for_model); a model whose
    description is no longer in the model folder gets the default cut."""
    from faceengine.embedders.registry import load_model_spec
    from faceengine.errors import ModelError

    spec = active_model_spec()
    if spec.name == model_name:
        return ClusterConfig.for_model(spec)
    try:
        return ClusterConfig.for_model(load_model_spec(model_name, settings.FACESITE_MODEL_DIR))
    except ModelError:
        logger.warning("No description of model %s; its unknown faces get the default cut.", model_name)
        return ClusterConfig()


# ------------------------------------------------------------------------------- store


def _crop_jpeg(rgb: np.ndarray, box: Sequence[float]) -> bytes:
    """A small square thumbnail of the face (a little room around it), for the pages."""
    from PIL import Image

    x, y, w, h = (float(v) for v in box)
    side = max(w, h) * 1.3
    cx, cy = x + w / 2, y + h / 2
    height, width = rgb.shape[:2]
    left, top = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    right, bottom = int(min(width, cx + side / 2)), int(min(height, cy + side / 2))
    image = Image.fromarray(rgb[top:bottom, left:right]).convert("RGB")
    image.thumbnail((CROP_SIZE, CROP_SIZE))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


@dataclass(frozen=True)
class NewUnknown:
    face_index: int
    box: Sequence[float]
    score: float
    vector: np.ndarray


def unknown_faces_store(
    *, job: RecognitionJob, rgb: np.ndarray, faces: Iterable[NewUnknown], model_name: str, dim: int
) -> list[int]:
    """Keep the unknown faces of a finished job and queue their clustering after the commit.

    Idempotent: a face of a job is stored once (a second run of the job stores nothing new).
    Crops are written first and removed again if the rows are not.
    """
    stored = set(UnknownFace.objects.filter(job=job).values_list("face_index", flat=True))
    found = [(face, _crop_jpeg(rgb, face.box)) for face in faces if face.face_index not in stored]
    return _store_faces({"job": job}, found, model_name, dim)


def unknown_video_faces_store(
    *, video: VideoJob, faces: Iterable[tuple[NewUnknown, bytes]], model_name: str, dim: int
) -> list[int]:
    """Keep the unknown people of a finished video, one face each (``face_index``: the
    appearance's index; the vector: its track's mean; the crop: its best frame's JPEG), and
    queue their clustering with the photos' after the commit. Idempotent like the photos'."""
    stored = set(UnknownFace.objects.filter(video=video).values_list("face_index", flat=True))
    found = [(face, crop) for face, crop in faces if face.face_index not in stored]
    return _store_faces({"video": video}, found, model_name, dim)


def _store_faces(source: dict[str, Any], faces: list[tuple[NewUnknown, bytes]], model_name: str, dim: int) -> list[int]:
    rows = []
    for face, crop in faces:
        if face.vector is None:
            continue
        if len(face.vector) != dim:
            raise UnknownError(f"A {len(face.vector)}-d vector for the {dim}-d model {model_name}.")
        row = UnknownFace(
            **source,
            face_index=face.face_index,
            box=[round(float(v), 1) for v in face.box],
            score=float(face.score),
            model_name=model_name,
            dim=dim,
            vector=vector_bytes(face.vector),
        )
        row.crop.save("face.jpg", ContentFile(crop), save=False)
        rows.append(row)
    if not rows:
        return []
    names = [stored_name(r.crop) for r in rows]
    storage = UnknownFace._meta.get_field("crop").storage
    try:
        with transaction.atomic():
            created = UnknownFace.objects.bulk_create(rows)
            ids = [r.pk for r in created]
            transaction.on_commit(lambda: _send_clustering(ids))
    except Exception:
        for name in names:
            storage.delete(name)
        raise
    return ids


def _send_clustering(face_ids: list[int]) -> None:
    from kombu.exceptions import OperationalError as BrokerError

    from recognition.tasks import cluster_unknown_faces

    try:
        cluster_unknown_faces.delay(face_ids)
    except (BrokerError, ConnectionError) as exc:
        # Not lost: every run clusters all faces still unclustered, so the next job's run (or
        # `manage.py cluster_unknown_faces`) takes these too.
        logger.error("Clustering of unknown faces %s could not be queued (%s).", face_ids[:5], exc)


# ------------------------------------------------------------------------------- cluster


def _refresh(cluster_ids: Iterable[int]) -> None:
    """Size and representative of each cluster from its faces; an empty cluster is deleted."""
    for cluster in UnknownCluster.objects.filter(pk__in=set(cluster_ids)):
        faces = list(UnknownFace.objects.filter(cluster=cluster).order_by("id"))
        if not faces:
            cluster.delete()
            continue
        vectors = np.stack([vector_array(f) for f in faces])
        best = representative_index(vectors, np.array([f.score for f in faces]))
        cluster.size, cluster.representative = len(faces), faces[best]
        cluster.save(update_fields=["size", "representative", "updated_at"])


def unknown_faces_cluster(*, face_ids: Sequence[int] = (), model_name: str | None = None) -> dict:
    """Cluster the unclustered unknown faces of a model into the existing clusters or new ones.

    ``face_ids`` name the faces that triggered the run (their model is the one clustered); every
    unclustered face of that model takes part, so a run that was never queued is caught up by the
    next. The faces are locked for the run, so two runs at once do not both cluster a face.
    """
    if model_name is None:
        first = UnknownFace.objects.filter(pk__in=list(face_ids)).values_list("model_name", flat=True).first()
        if first is None:
            return {"clustered": 0, "new_clusters": 0}
        model_name = first
    config = cluster_config(model_name)
    with transaction.atomic():
        pending = list(UnknownFace.objects.select_for_update().filter(model_name=model_name, cluster__isnull=True))
        if not pending:
            return {"clustered": 0, "new_clusters": 0}
        dim = pending[0].dim
        known = list(
            UnknownFace.objects.filter(model_name=model_name, dim=dim, cluster__isnull=False).only(
                "id", "vector", "dim", "cluster_id"
            )
        )
        pending = [f for f in pending if f.dim == dim]
        labels = cluster_incremental(
            np.stack([vector_array(f) for f in known]) if known else np.zeros((0, dim), np.float32),
            np.array([f.cluster_id for f in known], np.int64),
            np.stack([vector_array(f) for f in pending]),
            config,
        )[len(known) :]
        existing = {f.cluster_id for f in known}
        fresh: dict[int, UnknownCluster] = {}
        touched: set[int] = set()
        for face, label in zip(pending, labels.tolist(), strict=True):
            if label < 0:
                continue
            if label not in existing:
                if label not in fresh:
                    fresh[label] = UnknownCluster.objects.create(model_name=model_name, dim=dim)
                cluster_id = fresh[label].pk
            else:
                cluster_id = label
            UnknownFace.objects.filter(pk=face.pk, cluster__isnull=True).update(cluster_id=cluster_id)
            touched.add(cluster_id)
        _refresh(touched)
    clustered = int((labels >= 0).sum())
    logger.info(
        "Unknown faces of %s: %d of %d clustered, %d new cluster(s).", model_name, clustered, len(pending), len(fresh)
    )
    return {"clustered": clustered, "new_clusters": len(fresh)}


def _cluster(cluster: UnknownCluster | int, *, lock: bool = False) -> UnknownCluster:
    cluster_id = cluster.pk if isinstance(cluster, UnknownCluster) else int(cluster)
    rows = UnknownCluster.objects.select_for_update() if lock else UnknownCluster.objects
    found = rows.filter(pk=cluster_id).first()
    if found is None:
        raise ClusterNotFound(f"No unknown cluster with id {cluster_id}.", details={"cluster_id": cluster_id})
    return found


def cluster_merge(*, cluster: UnknownCluster | int, other: UnknownCluster | int) -> UnknownCluster:
    """Move every face of ``other`` into ``cluster`` and delete ``other`` (same model only)."""
    with transaction.atomic():
        target, source = _cluster(cluster, lock=True), _cluster(other, lock=True)
        if target.pk == source.pk:
            raise UnknownError("A cluster cannot be merged with itself.")
        if (target.model_name, target.dim) != (source.model_name, source.dim):
            from faceengine.errors import ModelMismatch

            raise ModelMismatch(
                f"Cluster {source.pk} is of {source.model_name}, cluster {target.pk} of {target.model_name}."
            )
        UnknownFace.objects.filter(cluster=source).update(cluster=target)
        target.dismissed = target.dismissed and source.dismissed
        target.save(update_fields=["dismissed", "updated_at"])
        source.delete()
        _refresh([target.pk])
    target.refresh_from_db()
    return target


def cluster_split(*, cluster: UnknownCluster | int, face_id: int) -> UnknownCluster:
    """Take a wrong face out of a cluster into a cluster of its own (which can be named, merged or
    dismissed like any other); it is not clustered back automatically."""
    with transaction.atomic():
        source = _cluster(cluster, lock=True)
        face = UnknownFace.objects.filter(pk=face_id, cluster=source).first()
        if face is None:
            raise UnknownError(f"Face {face_id} is not in cluster {source.pk}.", details={"face_id": face_id})
        if source.size <= 1:
            raise UnknownError("A cluster of one face cannot be split.")
        alone = UnknownCluster.objects.create(model_name=source.model_name, dim=source.dim)
        UnknownFace.objects.filter(pk=face.pk).update(cluster=alone)
        _refresh([source.pk, alone.pk])
    alone.refresh_from_db()
    return alone


def cluster_dismiss(*, cluster: UnknownCluster | int, dismissed: bool = True) -> UnknownCluster:
    """Hide a cluster (not a person to name); its faces stay until retention removes them, so
    later photos of the same stranger join it instead of forming a new cluster."""
    found = _cluster(cluster)
    UnknownCluster.objects.filter(pk=found.pk).update(dismissed=dismissed, updated_at=timezone.now())
    found.refresh_from_db()
    return found


def _check_actor(actor: Any, *, new_member: bool) -> None:
    """The same rule at every front door (page, API, a script): None is the system itself."""
    from members.errors import PermissionRefused

    from .unknown_selectors import can_change_unknowns, can_name_as_new_member

    if actor is None:
        return
    if not can_change_unknowns(actor) or (new_member and not can_name_as_new_member(actor)):
        raise PermissionRefused("Naming unknown people needs staff or the member permissions.")


@dataclass
class AssignResult:
    member: Any
    faces_sent: int
    created: bool


def cluster_assign(
    *, cluster: UnknownCluster | int, member_id: int | None = None, display_name: str | None = None, actor: Any = None
) -> AssignResult:
    """Name a cluster: as a new member (``display_name``) or an existing one (``member_id``).

    Each face's crop of its job photo (for a video's face, its stored crop of the best frame)
    goes to the member through ``member_upload_photos`` (the enrolment workers, audited with
    ``actor``); the cluster and its faces are then deleted (they are no longer unknown). Faces
    whose photo is gone are skipped.
    """
    from members import services as member_services
    from members.selectors import member_get

    from .services import job_face_crop

    if (member_id is None) == (not display_name):
        raise UnknownError("Give either member_id or display_name.")
    _check_actor(actor, new_member=member_id is None)
    found = _cluster(cluster)
    faces = list(UnknownFace.objects.filter(cluster=found).select_related("job").order_by("-score", "id"))
    uploads = []
    for face in faces:
        try:
            if face.job is not None:
                crop = job_face_crop(job=face.job, face_index=face.face_index)
                name = f"job-{face.job_id}-face-{face.face_index + 1}.jpg"
            else:
                with face.crop.open("rb") as stored:
                    crop = stored.read()
                name = f"video-{face.video_id}-person-{face.face_index + 1}.jpg"
        except (OSError, ValueError, FacesiteError) as exc:  # ValueError: a face without a crop file
            logger.info("Unknown face %s skipped: %s", face.pk, exc)
            continue
        uploads.append(ContentFile(crop, name=name))
    if not uploads:
        raise UnknownError(f"No face of cluster {found.pk} has its photo any more.")
    created = member_id is None
    with transaction.atomic():
        if created:
            member = member_services.member_create(display_name=str(display_name), actor=actor).member
        else:
            member = member_get(member_id=int(member_id or 0))
        member_services.member_upload_photos(member=member, files=uploads, actor=actor)
        _delete_faces(UnknownFace.objects.filter(cluster=found))
        UnknownCluster.objects.filter(pk=found.pk).delete()
    logger.info("Unknown cluster %s named %s (%d face(s)).", found.pk, member.pk, len(uploads))
    return AssignResult(member=member, faces_sent=len(uploads), created=created)


# ------------------------------------------------------------------------------- delete


def _delete_faces(faces) -> int:
    """Delete unknown faces and, after the commit, their crops; refresh the clusters they left."""
    rows = list(faces.values_list("id", "crop", "cluster_id"))
    if not rows:
        return 0
    storage = UnknownFace._meta.get_field("crop").storage
    names = [crop for _, crop, _ in rows if crop]
    with transaction.atomic():
        UnknownFace.objects.filter(pk__in=[pk for pk, _, _ in rows]).delete()
        _refresh({cluster_id for _, _, cluster_id in rows if cluster_id})
        transaction.on_commit(lambda: _delete_files(storage, names))
    return len(rows)


def _delete_files(storage: Any, names: list[str]) -> None:
    for name in names:
        storage.delete(name)


def unknown_faces_for_jobs_delete(*, job_ids: Iterable[int]) -> int:
    """Before jobs are deleted: their unknown faces leave their clusters (sizes and
    representatives follow) and their crops are removed."""
    return _delete_faces(UnknownFace.objects.filter(job_id__in=list(job_ids)))


def unknown_faces_for_videos_delete(*, video_ids: Iterable[int]) -> int:
    """Before videos are deleted: as ``unknown_faces_for_jobs_delete``, for their unknown people."""
    return _delete_faces(UnknownFace.objects.filter(video_id__in=list(video_ids)))


@dataclass
class PurgeReport:
    deleted: int
    older_than: str | None

    def as_dict(self) -> dict:
        return {"deleted": self.deleted, "older_than": self.older_than}


def unknown_faces_purge(*, days: int | None = None, now: Any = None) -> PurgeReport:
    """Delete unknown faces (vectors and crops) older than ``days`` (the retention setting);
    0 keeps everything. Jobs, their photos and members are untouched."""
    days = settings.FACESITE_UNKNOWN_RETENTION_DAYS if days is None else days
    if days <= 0:
        return PurgeReport(deleted=0, older_than=None)
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted = _delete_faces(UnknownFace.objects.filter(created_at__lt=cutoff))
    if deleted:
        logger.info("Retention: %d unknown face(s) older than %s deleted.", deleted, cutoff.isoformat())
    return PurgeReport(deleted=deleted, older_than=cutoff.isoformat())
