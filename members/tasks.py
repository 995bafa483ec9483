"""Celery tasks: another front door to the member services. They take ids and paths (JSON),
never images or model instances, and are queued with ``transaction.on_commit``."""

from __future__ import annotations

import logging

from celery import shared_task

from . import services
from .errors import MemberNotFound

logger = logging.getLogger(__name__)


@shared_task(name="members.enroll_folder")
def enroll_folder_task(path: str, on_existing: str = "skip") -> dict:
    """``manage.py enroll_folder`` for big folders: one member per sub-folder of ``path``
    (a folder the worker can read). Re-running it skips members already enrolled."""
    summary = services.folder_enroll(root=path, on_existing=on_existing)
    return summary.as_dict()


@shared_task(name="members.process_uploads")
def process_uploads_task(upload_ids: list[int]) -> dict:
    """Photos uploaded in the admin: detect, embed and add them to their member."""
    return services.uploads_process(upload_ids=upload_ids)


@shared_task(name="members.recompute_embeddings")
def recompute_embeddings_task(member_id: int, model_name: str | None = None, actor_id: int | None = None) -> dict:
    """Re-embed a member's stored faces with a model (after a model change); ``actor_id`` is the
    user who asked, for the audit log."""
    from django.contrib.auth import get_user_model

    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    try:
        result = services.member_recompute_embeddings(member=member_id, model_name=model_name, actor=actor)
    except MemberNotFound:
        logger.info("Member %s no longer exists; nothing to recompute.", member_id)
        return {"member_id": member_id, "skipped": "member_not_found"}
    return {
        "member_id": result.member_id,
        "model_name": result.model_name,
        "embedded": result.embedded,
        "failed": result.failed,
        "template_count": result.template_count,
    }


@shared_task(name="members.bulk_enroll")
def bulk_enroll_task(bulk_id: str) -> dict | None:
    """A zip uploaded through the API: enrol its person folders, record the outcome."""
    from .bulk import bulk_run

    return bulk_run(bulk_id=bulk_id)


@shared_task(name="members.gallery_snapshot")
def gallery_snapshot_task() -> dict:
    """Beat, every FACESITE_GALLERY_SNAPSHOT_INTERVAL s: the snapshot starting workers load,
    then the change log pruned behind it (``manage.py gallery_snapshot``)."""
    from .snapshots import log_prune_behind_snapshots, snapshots_write_active

    written = snapshots_write_active()
    return {"snapshots": [w.as_dict() for w in written], "log_pruned": log_prune_behind_snapshots()}
