"""A full disk (or an exhausted quota) while an upload is stored: a clear error, nothing half-written.

Django's ``FileSystemStorage._save`` creates the final file and writes into it chunk by chunk;
when the disk fills up midway the truncated file is left behind. ``storage_save`` fixes the name
before writing, so on ENOSPC/EDQUOT it can remove exactly that partial file, and raises
``StorageFull`` (a stable code the API answers with 507, pages with a form error).
"""
from __future__ import annotations

import errno
import logging
from typing import Any

from django.core.files.storage import Storage

logger = logging.getLogger(__name__)

# "No space left on device" and "Disk quota exceeded": both mean "try later, not your file".
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
STORAGE_FULL_CODE = "storage_full"
STORAGE_FULL_MESSAGE = "The server has no room left to store the photo; nothing was saved. Please try again later."


class StorageFull(Exception):
    """The upload could not be stored for lack of space; nothing of it was kept."""

    code = STORAGE_FULL_CODE

    def __init__(self, message: str = STORAGE_FULL_MESSAGE) -> None:
        super().__init__(message)
        self.message = message

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


def is_disk_full(exc: BaseException) -> bool:
    """True for ENOSPC/EDQUOT, also when wrapped (``raise ... from``) by another exception."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, StorageFull) or (isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def storage_save(storage: Storage, name: str, content: Any, *, max_length: int | None = None) -> str:
    """``storage.save`` that, when the disk is full, deletes the partial file and raises StorageFull.

    ``name`` should already be unique (the upload paths are random), so the name fixed here is
    the one ``save`` writes to; other OSErrors propagate unchanged.
    """
    name = storage.get_available_name(name, max_length=max_length)
    try:
        return storage.save(name, content, max_length=max_length)
    except OSError as exc:
        if exc.errno not in DISK_FULL_ERRNOS:
            raise
        _remove_partial(storage, name)
        logger.error("Storage full while saving %s: %s", name, exc)
        raise StorageFull() from exc


def _remove_partial(storage: Storage, name: str) -> None:
    try:
        if storage.exists(name):
            storage.delete(name)
    except OSError:
        logger.warning("Could not remove the partial file %s", name, exc_info=True)
