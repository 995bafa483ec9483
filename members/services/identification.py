"""1:N identification of every face of a photo against the gallery of the active model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from facesite import engine

from ..selectors import gallery_for_model, gallery_settings, identification_threshold

if TYPE_CHECKING:
    from faceengine.recognizer import Recognition


def identify_faces(
    *, image: Any, k: int | None = None, threshold: float | None = None, match: str | None = None
) -> list[Recognition]:
    """Every face of a photo with its best member (``label`` = member id) or None (unknown).

    Each result carries the similarity, the margin to the second-best member and the top-k
    candidates; use ``selectors.member_names`` for the names. Image errors are the engine's
    (``faceengine.errors.ImageError`` with a stable ``code``).
    """
    recognizer = engine.recognizer()
    gallery = gallery_for_model(model_name=recognizer.model_name, dim=recognizer.dim, match=match)
    if threshold is None:
        threshold = identification_threshold(model_name=recognizer.model_name)
    k = k or int(gallery_settings()["TOP_K"])
    return recognizer.recognize(image, gallery, threshold, k=k)
