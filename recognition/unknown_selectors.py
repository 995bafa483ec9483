"""Reads of unknown people (clusters of unknown faces) and of where members appear.

Who may see: staff, or users with ``members.view_member``; who may act on clusters (name,
merge, split, dismiss): staff, or ``members.change_member`` (and ``members.add_member`` to name
a cluster as a new member). Strangers' faces are biometric data: nobody else sees them.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from recognition.models import MemberAppearance, UnknownCluster, UnknownFace, VideoAppearance


def _allowed(user: Any, perm: str) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(getattr(user, "is_staff", False) or user.has_perm(perm))


def can_view_unknowns(user: Any) -> bool:
    return _allowed(user, "members.view_member")


def can_change_unknowns(user: Any) -> bool:
    return _allowed(user, "members.change_member")


def can_name_as_new_member(user: Any) -> bool:
    return _allowed(user, "members.add_member")


def cluster_list(*, model_name: str | None = None, dismissed: bool = False) -> QuerySet[UnknownCluster]:
    """Clusters largest first, with their faces (best detection score first)."""
    clusters = UnknownCluster.objects.filter(dismissed=dismissed, size__gt=0)
    if model_name:
        clusters = clusters.filter(model_name=model_name)
    faces = UnknownFace.objects.order_by("-score", "id").only(
        "id", "job_id", "video_id", "face_index", "box", "score", "cluster_id", "created_at", "crop"
    )
    return (
        clusters.select_related("representative")
        .prefetch_related(Prefetch("faces", queryset=faces))
        .order_by("-size", "id")
    )


def cluster_get(*, cluster_id: int) -> UnknownCluster | None:
    return cluster_list().filter(pk=cluster_id).first() or cluster_list(dismissed=True).filter(pk=cluster_id).first()


def unknown_face_get(*, face_id: int) -> UnknownFace | None:
    return UnknownFace.objects.filter(pk=face_id).first()


def _face_data(face: UnknownFace) -> dict:
    return {
        "id": face.pk,
        "job_id": face.job_id,
        "video_id": face.video_id,
        "face_index": face.face_index,
        "box": [float(v) for v in face.box],
        "score": round(float(face.score), 4),
        "created_at": face.created_at.isoformat() if face.created_at else None,
    }


def cluster_data(*, cluster: UnknownCluster, face_limit: int | None = None) -> dict:
    """A cluster as plain JSON-ready data; ``faces`` in quality order (detection score)."""
    faces = list(cluster.faces.all())
    representative = cluster.representative or (faces[0] if faces else None)
    return {
        "id": cluster.pk,
        "size": cluster.size,
        "model_name": cluster.model_name,
        "dismissed": cluster.dismissed,
        "faces": [_face_data(f) for f in (faces[:face_limit] if face_limit else faces)],
        "representative": _face_data(representative) if representative else None,
        "updated_at": cluster.updated_at.isoformat() if cluster.updated_at else None,
    }


def member_appearances(*, member_id: int, limit: int = 500) -> list[dict]:
    """Where a member was recognised, newest first: one row per face in a photo job
    (``job_id``, ``face_index``) and one per appearance in a video (``video_id``, its index,
    ``start_s``/``end_s``); at most ``limit`` rows."""
    photos = (
        MemberAppearance.objects.filter(member_id=member_id)
        .select_related("job")
        .order_by("-job__created_at", "-job_id", "face_index")[:limit]
    )
    videos = (
        VideoAppearance.objects.filter(member_id=member_id)
        .select_related("video")
        .order_by("-video__created_at", "-video_id", "start_s")[:limit]
    )
    rows = [_photo_appearance(a) for a in photos] + [_video_appearance(a) for a in videos]
    # Newest upload first (ISO times sort as text); within one upload, in its own order.
    rows.sort(key=lambda row: row["created_at"] or "", reverse=True)
    return rows[:limit]


def _photo_appearance(appearance: MemberAppearance) -> dict:
    job = appearance.job
    return {
        "job_id": job.pk,
        "video_id": None,
        "face_index": appearance.face_index,
        "similarity": appearance.similarity,
        "start_s": None,
        "end_s": None,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "original_name": job.original_name,
    }


def _video_appearance(appearance: VideoAppearance) -> dict:
    video = appearance.video
    return {
        "job_id": None,
        "video_id": video.pk,
        "face_index": appearance.index,
        "similarity": appearance.best_similarity,
        "start_s": appearance.start_s,
        "end_s": appearance.end_s,
        "created_at": video.created_at.isoformat() if video.created_at else None,
        "original_name": video.original_name,
    }
