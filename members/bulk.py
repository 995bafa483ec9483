"""Bulk enrolment from a zip of person folders: unpack safely, enrol through a worker, report.

There is no job row for a folder enrolment: a bulk upload is a folder under
``MEDIA_ROOT/bulk/<id>/`` with the unpacked people and a ``status.json`` (queued, running,
done or failed, with the enrolment summary) that the client reads back. The media root is
shared by the web tier and the workers (uploads travel as paths), so both see it.
"""

from __future__ import annotations

import errno
import json
import logging
import re
import shutil
import stat
import uuid
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from django.conf import settings
from django.db import transaction

from facesite.disk_full import is_disk_full

from .errors import MemberError, PermissionRefused

logger = logging.getLogger(__name__)

BULK_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_RATIO = 200  # a member photo compresses little; more than this is a zip bomb
CHUNK = 1024 * 1024


class ArchiveRejected(MemberError):
    """The zip is unreadable, unsafe (paths, links, encryption, bombs) or holds no person."""

    code = "invalid_zip"


class ArchiveTooLarge(MemberError):
    """Too many entries, or more bytes unpacked than allowed."""

    code = "zip_too_large"


class ArchivePhotoTooLarge(MemberError):
    code = "image_too_large"


def _bulk_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "bulk"


def _status_path(bulk_id: str) -> Path:
    return _bulk_root() / bulk_id / "status.json"


def _write_status(bulk_id: str, data: dict) -> None:
    path = _status_path(bulk_id)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def _read_status(bulk_id: str) -> dict | None:
    if not BULK_ID.match(bulk_id or ""):
        return None
    try:
        return json.loads(_status_path(bulk_id).read_text())
    except (OSError, ValueError):
        return None


def _safe_parts(name: str) -> tuple[str, ...] | None:
    """The path parts of a zip entry if it is a plain relative path, else None."""
    if "\\" in name or "\x00" in name:
        return None
    path = PurePosixPath(name)
    if path.is_absolute() or not path.parts:
        return None
    parts = path.parts
    if any(p in ("", ".", "..") or ":" in p for p in parts):
        return None
    return parts


def _open_archive(upload: BinaryIO) -> zipfile.ZipFile:
    if not zipfile.is_zipfile(upload):
        raise ArchiveRejected("The archive is not a zip file.")
    upload.seek(0)
    try:
        return zipfile.ZipFile(upload)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError):
        # Never the exception's text: an OSError names server paths.
        raise ArchiveRejected("The zip cannot be read: it is damaged or not a zip file.") from None


def _unpack_error(exc: BaseException, entry_name: str) -> ArchiveRejected:
    """A client's sentence for a failure while writing an entry, without the server's paths
    (which an OSError's text carries)."""
    shown = repr(entry_name[:100])
    if isinstance(exc, FileExistsError):
        return ArchiveRejected(f"The zip holds the entry {shown} more than once.")
    if isinstance(exc, OSError) and exc.errno in (errno.ENAMETOOLONG,):
        return ArchiveRejected(f"The entry {shown} has a name that is too long.")
    if isinstance(exc, OSError) and exc.errno in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
        return ArchiveRejected(f"The entry {shown} clashes with another entry of the zip.")
    if isinstance(exc, (zipfile.BadZipFile, EOFError, NotImplementedError, ValueError)):
        return ArchiveRejected(
            f"The entry {shown} cannot be unpacked: the zip is damaged or uses an unsupported compression."
        )
    return ArchiveRejected(f"The entry {shown} cannot be unpacked.")


def _check_totals(entries: list[zipfile.ZipInfo]) -> None:
    limit_entries = settings.FACESITE_API_MAX_ZIP_ENTRIES
    limit_total = settings.FACESITE_API_MAX_ZIP_UNPACKED_BYTES
    if len(entries) > limit_entries:
        raise ArchiveTooLarge(f"The zip has {len(entries)} entries; the limit is {limit_entries}.")
    declared = sum(e.file_size for e in entries)
    if declared > limit_total:
        raise ArchiveTooLarge(f"The zip unpacks to {declared} bytes; the limit is {limit_total}.")


def _unpack(upload: BinaryIO, dest: Path) -> tuple[int, int]:
    """Unpack a zip of person folders into ``dest``; returns (people, files)."""
    archive = _open_archive(upload)
    entries = archive.infolist()
    _check_totals(entries)
    limit_file = settings.FACESITE_MAX_UPLOAD_BYTES
    limit_total = settings.FACESITE_API_MAX_ZIP_UNPACKED_BYTES
    people, files, written = set(), 0, 0
    dest.mkdir(parents=True)
    root = dest.resolve()
    entry_name = ""
    try:
        for entry in entries:
            entry_name = entry.filename
            parts = _safe_parts(entry.filename)
            if parts is None:
                raise ArchiveRejected(f"The entry {entry.filename[:100]!r} has an unsafe path.")
            if entry.is_dir() or any(p.startswith(".") or p == "__MACOSX" for p in parts):
                continue
            if stat.S_ISLNK(entry.external_attr >> 16):
                continue  # links are never followed nor created
            if entry.flag_bits & 0x1:
                raise ArchiveRejected("Encrypted zips are not supported.")
            if entry.file_size > limit_file:
                raise ArchivePhotoTooLarge(
                    f"{entry.filename[:100]} is {entry.file_size} bytes; the limit is {limit_file}."
                )
            if entry.compress_size and entry.file_size / entry.compress_size > MAX_RATIO:
                raise ArchiveRejected(f"{entry.filename[:100]} is compressed suspiciously well.")
            target = root.joinpath(*parts).resolve()
            if root not in target.parents:
                raise ArchiveRejected(f"The entry {entry.filename[:100]!r} has an unsafe path.")
            target.parent.mkdir(parents=True, exist_ok=True)
            size = 0
            with archive.open(entry) as source, open(target, "xb") as out:
                # The sizes in the header can lie: count what really comes out.
                while chunk := source.read(CHUNK):
                    size += len(chunk)
                    written += len(chunk)
                    if size > entry.file_size or size > limit_file or written > limit_total:
                        raise ArchiveRejected(f"{entry.filename[:100]} unpacks to more than it declares.")
                    out.write(chunk)
            files += 1
            if len(parts) > 1:
                people.add(parts[0])
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        if is_disk_full(exc):
            raise
        logger.info("Bulk zip entry %r not unpacked: %s", entry_name[:100], exc)
        raise _unpack_error(exc, entry_name) from None
    if not people:
        raise ArchiveRejected("The zip has no person folders (one folder of photos per person).")
    return len(people), files


def bulk_create(*, user_id: int, archive: BinaryIO, on_existing: str = "skip") -> tuple[str, dict]:
    """Unpack ``archive`` and queue its enrolment after the commit; returns (id, status)."""
    bulk_id = uuid.uuid4().hex
    people_dir = _bulk_root() / bulk_id / "people"
    try:
        people, files = _unpack(archive, people_dir)
    except BaseException:
        shutil.rmtree(people_dir.parent, ignore_errors=True)
        raise
    record = {
        "status": "queued",
        "people": people,
        "files": files,
        "user_id": user_id,
        "on_existing": on_existing,
        "summary": None,
        "error": None,
    }
    _write_status(bulk_id, record)

    def queue() -> None:
        from .tasks import bulk_enroll_task

        bulk_enroll_task.delay(bulk_id)

    transaction.on_commit(queue)
    return bulk_id, record


def bulk_get(*, bulk_id: str, user_id: int, is_superuser: bool = False) -> dict | None:
    """The status of a bulk enrolment, or None when unknown or someone else's."""
    record = _read_status(bulk_id)
    if record is None or (record.get("user_id") != user_id and not is_superuser):
        return None
    return _public(record)


def _public(record: dict) -> dict:
    """The record as a client may see it: the summary without the server's folder (records
    written before this rule kept it)."""
    summary = record.get("summary")
    if isinstance(summary, dict):
        record = {**record, "summary": {k: v for k, v in summary.items() if k != "root"}}
    return record


def bulk_run(*, bulk_id: str) -> dict | None:
    """Enrol the unpacked people (the worker's side); the photos are removed afterwards.

    A redelivered task finds the status done and does nothing; one that finds it running
    (its first worker died) enrols again, which skips or extends members as ``on_existing``
    says, so nobody is enrolled twice.
    """
    from . import services

    record = _read_status(bulk_id)
    if record is None or record["status"] in ("done", "failed"):
        return record
    record["status"] = "running"
    _write_status(bulk_id, record)
    people_dir = _bulk_root() / bulk_id / "people"
    try:
        from django.contrib.auth import get_user_model

        user_id = record.get("user_id")  # the uploader: the audit's actor
        uploader = get_user_model().objects.filter(pk=user_id).first() if user_id is not None else None
        if uploader is None:
            raise PermissionRefused("The user who uploaded the zip no longer exists.")
        # The permissions are checked again here: they may have been taken away since the upload.
        summary = services.folder_enroll(root=people_dir, on_existing=record.get("on_existing", "skip"), actor=uploader)
        record.update(status="done", summary=_public({"summary": summary.as_dict()})["summary"])
    except MemberError as exc:
        logger.warning("Bulk enrolment %s refused: %s", bulk_id, exc.message)
        record.update(status="failed", error=exc.message)
    except Exception:
        logger.exception("Bulk enrolment %s failed", bulk_id)
        record.update(status="failed", error="The enrolment failed on the server; it has been logged.")
    _write_status(bulk_id, record)
    shutil.rmtree(people_dir, ignore_errors=True)
    return record
