"""Enrolment from a folder with one sub-folder per person (``manage.py enroll_folder``, the
bulk zip of the API) and who may do it."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ..errors import (
    DuplicateExternalId,
    EnrolmentFailed,
    InvalidInput,
    PermissionRefused,
)
from ..models import (
    Member,
)
from .enrolment import member_add_faces, member_create
from .results import ON_EXISTING, FolderSummary, Progress, SkippedFile

logger = logging.getLogger(__name__)


def bulk_permissions(on_existing: str) -> tuple[str, ...]:
    """The permissions a bulk enrolment needs. Its report says which folders were already members
    (a read of the gallery: view); adding to or replacing their faces changes them (change),
    exactly as ``POST /members/{id}/faces`` would."""
    needed: tuple[str, ...] = ("members.add_member", "members.view_member")
    if on_existing != "skip":
        needed += ("members.change_member",)
    return needed


def check_bulk_permission(actor: Any, on_existing: str) -> None:
    """Refuse a bulk enrolment the actor may not do. ``actor=None`` is the operator's own shell
    (``manage.py enroll_folder``), who may do anything."""
    if actor is None:
        return
    missing = [perm for perm in bulk_permissions(on_existing) if not actor.has_perm(perm)]
    if missing:
        raise PermissionRefused(
            f"Bulk enrolment with on_existing={on_existing} needs the permissions "
            f"{', '.join(bulk_permissions(on_existing))}.",
            details={"missing": missing},
        )


def folder_enroll(
    *, root: str | os.PathLike, on_existing: str = "skip", progress: Progress | None = None, actor: Any = None
) -> FolderSummary:
    """Enrol one member per sub-folder of ``root`` (its name, underscores as spaces, is the
    display name; the folder name is the external id, so a second run finds the same members).

    ``on_existing``: "skip" members already enrolled (the default: re-runs resume), "add" the
    photos to them (averaging), or "replace" their faces. Every file that gave no face is listed
    in the summary with the reason.
    """
    if on_existing not in ON_EXISTING:
        raise InvalidInput(f"on_existing must be one of {ON_EXISTING}, got {on_existing!r}.")
    check_bulk_permission(actor, on_existing)
    root = Path(root)
    if not root.is_dir():
        raise InvalidInput(f"{root} is not a folder.")
    summary = FolderSummary(root=str(root), on_existing=on_existing)
    for path in sorted(root.iterdir()):
        if path.name.startswith("."):
            continue
        if not path.is_dir():
            summary.skipped_files.append(
                SkippedFile(path.name, "not_in_person_folder", "Photos must be in one sub-folder per person.")
            )
            if progress:
                progress(1)
            continue
        files = person_files(path)
        _enroll_person(path, files, root, on_existing, summary, progress, actor)
    logger.info("Folder %s enrolled: %s", root, {k: v for k, v in summary.as_dict().items() if k != "skipped_files"})
    return summary


def person_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _enroll_person(
    folder: Path,
    files: list[Path],
    root: Path,
    on_existing: str,
    summary: FolderSummary,
    progress: Progress | None,
    actor: Any = None,
) -> None:
    external_id = folder.name
    if not files:
        summary.skipped_files.append(SkippedFile(folder.name + "/", "empty_folder", "The folder has no files."))
        return
    max_length = Member._meta.get_field("external_id").max_length
    if max_length is not None and len(external_id) > max_length:
        summary.members_failed += 1
        summary.skipped_files.extend(
            SkippedFile(str(f.relative_to(root)), "invalid_input", "The folder name is too long for an external id.")
            for f in files
        )
        if progress:
            progress(len(files))
        return
    existing = Member.objects.filter(external_id__iexact=external_id).values_list("id", flat=True).first()
    try:
        if existing is None:
            result = member_create(
                display_name=folder.name.replace("_", " ").strip() or folder.name,
                external_id=external_id,
                photos=files,
                progress=progress,
                actor=actor,
            )
            summary.members_created += 1
        elif on_existing == "skip":
            summary.members_skipped += 1
            if progress:
                progress(len(files))
            return
        else:
            result = member_add_faces(
                member=existing,
                photos=files,
                progress=progress,
                actor=actor,
                mode="average" if on_existing == "add" else "replace",
            )
            summary.members_updated += 1
        outcomes = result.outcomes
    except EnrolmentFailed as exc:
        summary.members_failed += 1
        outcomes = exc.outcomes
    except DuplicateExternalId:
        summary.members_skipped += 1  # enrolled by someone else meanwhile
        return
    for item, outcome in zip(files, outcomes, strict=True):
        if outcome.ok:
            summary.photos_added += 1
        else:
            summary.skipped_files.append(
                SkippedFile(str(item.relative_to(root)), outcome.code or "error", outcome.message or "")
            )
