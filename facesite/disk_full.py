"""A full disk (or an exhausted quota) while an upload is stored: a clear error, nothing half-written.

Django's ``FileSystemStorage._save`` creates the final file and writes into it chunk by chunk;
when the disk fills up midway the truncated file is left behind. ``DiskFullSafeStorage`` (the
project's default storage, so every FileField save goes through it) removes exactly that partial
file on ENOSPC/EDQUOT and raises ``StorageFull`` (a stable code the API answers with 507, pages
with a form error).
"""

from __future__ import annotations

import errno
import logging
from typing import Any

from django.core.files.storage import FileSystemStorage

from faceengine.errors import FacesiteError

logger = logging.getLogger(__name__)

# "No space left on device" and "Disk quota exceeded": both mean "try later, not your file".
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
STORAGE_FULL_CODE = "storage_full"
STORAGE_FULL_MESSAGE = "The server has no room left to store the photo; nothing was saved. Please try again later."


class StorageFull(FacesiteError):
    """The upload could not be stored for lack of space; nothing of it was kept."""

    code = STORAGE_FULL_CODE

    def __init__(self, message: str = STORAGE_FULL_MESSAGE) -> None:
        super().__init__(message)


def is_disk_full(exc: BaseException) -> bool:
    """True for ENOSPC/EDQUOT, also when wrapped (``raise ... from``) by another exception."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        if isinstance(current, StorageFull) or (isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS):
            return True
        current, seen = current.__cause__ or current.__context__, seen + 1
    return False


class DiskFullSafeStorage(FileSystemStorage):
    """``FileSystemStorage`` that, when the disk is full, deletes the partial file and raises
    StorageFull; other OSErrors propagate unchanged."""

    def _save(self, name: str, content: Any) -> str:
        # ``save`` has already made ``name`` available, so it is the file being written (the
        # upload paths are random: a clash that would make the parent pick another is moot).
        try:
            return super()._save(name, content)  # type: ignore[misc]  # django-stubs lacks FileSystemStorage._save
        except OSError as exc:
            if exc.errno not in DISK_FULL_ERRNOS:
                raise
            self._remove_partial(name)
            logger.error("Storage full while saving %s: %s", name, exc)
            raise StorageFull() from exc

    def _remove_partial(self, name: str) -> None:
        try:
            if self.exists(name):
                self.delete(name)
        except OSError:
            logger.warning("Could not remove the partial file %s", name, exc_info=True)
