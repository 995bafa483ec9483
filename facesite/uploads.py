"""What every app does with an uploaded photo before the engine sees it: its name for reports,
its bytes up to a limit, the extension of its real content, and a generated storage name.

The uploaded name is shown to people and never used on disk; the stored file's extension comes
from the content (Pillow's format), so ``evil.php`` holding a JPEG is stored as ``.jpg``.
"""

from __future__ import annotations

import io
import os
import uuid
from typing import Any

# Pillow format -> the extension of the stored file.
PHOTO_EXTENSIONS = {
    "JPEG": "jpg",
    "MPO": "jpg",
    "PNG": "png",
    "WEBP": "webp",
    "BMP": "bmp",
    "GIF": "gif",
    "TIFF": "tif",
}
UNKNOWN_EXTENSION = "bin"
MAX_NAME_LENGTH = 255


def upload_name(upload: Any, default: str = "") -> str:
    """The base name a client gave its file (for messages only), at most 255 characters."""
    return os.path.basename(str(getattr(upload, "name", "") or ""))[:MAX_NAME_LENGTH] or default


def read_upload(upload: Any, limit: int) -> bytes:
    """The bytes of a file object from its start, at most ``limit + 1`` (so "too large" shows)."""
    if hasattr(upload, "seek"):
        upload.seek(0)
    data = upload.read(limit + 1)
    return bytes(data)


def photo_extension(data: bytes) -> str:
    """The stored extension for these bytes, judged from the content; "bin" for a non-image."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return PHOTO_EXTENSIONS.get(image.format or "", UNKNOWN_EXTENSION)
    except Exception:  # noqa: BLE001 - Pillow raises many types for bytes that are not an image
        return UNKNOWN_EXTENSION


def generated_name(folder: str, filename: str, *, shard: bool = True) -> str:
    """A fresh storage name ``folder/[ab/]<uuid>.<ext>``: the ``upload_to`` of every model.

    ``filename`` is only ever ``photo.<ext>`` built from the sniffed format; its extension is
    kept if it is short and alphanumeric, else "bin". ``shard`` spreads files over 256
    sub-folders, for the folders that grow with every photo.
    """
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else UNKNOWN_EXTENSION
    if not ext.isalnum() or len(ext) > 5:
        ext = UNKNOWN_EXTENSION
    prefix = f"{folder}/{uuid.uuid4().hex[:2]}" if shard else folder
    return f"{prefix}/{uuid.uuid4().hex}.{ext}"
