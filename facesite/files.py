"""Serving stored photos privately: media files are never public, a view decides who may see."""

from __future__ import annotations

from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404


def stored_name(field: FieldFile) -> str:
    """The storage name of the file ``field`` holds; FileNotFoundError when it holds none."""
    if not field.name:
        raise FileNotFoundError("The file field holds no stored file.")
    return field.name


def private_file_response(field: FieldFile) -> FileResponse:
    """The stored file of ``field`` for a caller the view already authorised; 404 if gone."""
    try:
        handle = field.storage.open(stored_name(field), "rb")
    except OSError:
        raise Http404("The photo is no longer stored.") from None
    response = FileResponse(handle)
    # The browser may keep it, shared caches may not.
    response["Cache-Control"] = "private, max-age=3600"
    return response
