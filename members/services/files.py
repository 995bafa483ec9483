"""Stored face photos: written under generated names before the transaction, removed after it."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.core.files.base import ContentFile

from ..models import (
    FaceSample,
)
from .photos import PreparedPhoto

logger = logging.getLogger(__name__)


def photo_field():
    return FaceSample._meta.get_field("photo")


def store_files(prepared: list[PreparedPhoto]) -> list[str]:
    """Write the accepted photos under generated names; returns the storage names."""
    field_ = photo_field()
    names: list[str] = []
    try:
        for item in prepared:
            name = field_.generate_filename(None, f"photo.{item.ext}")
            # A full disk: the partial file is removed and StorageFull raised (facesite.disk_full).
            names.append(field_.storage.save(name, ContentFile(item.data), max_length=field_.max_length))
    except Exception:
        delete_files(names)
        raise
    return names


def delete_files(names: Iterable[str], storage=None) -> None:
    storage = storage or photo_field().storage
    for name in names:
        if not name:
            continue
        try:
            storage.delete(name)
        except OSError:
            logger.warning("Could not delete the stored photo %s", name, exc_info=True)
