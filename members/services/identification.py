"""1:N identification of every face of a photo against the gallery of the active model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from facesite import engine

from ..selectors import IdentificationBar, gallery_for_model, gallery_settings, identification_bar

if TYPE_CHECKING:
    from faceengine.recognizer import Recognition


@dataclass(frozen=True)
class Identification:
    """The faces of a photo, each with its best member or None, and the threshold they met."""

    faces: list[Recognition]
    bar: IdentificationBar


def identify(
    *, image: Any, k: int | None = None, threshold: float | None = None, match: str | None = None
) -> Identification:
    """Every face of a photo with its best member (``label`` = member id) or None (unknown).

    The threshold is the one calibrated for the size of the gallery searched (see
    ``selectors.identification_bar``) unless ``threshold`` is given. Each result carries the
    similarity, the margin to the second-best member and the top-k candidates; use
    ``selectors.member_names`` for the names. Image errors are the engine's
    (``faceengine.errors.ImageError`` with a stable ``code``).
    """
    recognizer = engine.recognizer()
    config = gallery_settings()
    match = match or config["MATCH"]
    gallery = gallery_for_model(model_name=recognizer.model_name, dim=recognizer.dim, match=match)
    if threshold is not None:  # the caller's own bar (a fake model in tests has no calibration)
        bar = IdentificationBar(float(threshold), len(gallery), match, "request", None, None)
    else:
        bar = identification_bar(model_name=recognizer.model_name, gallery_size=len(gallery), match=match)
    k = k or int(config["TOP_K"])
    return Identification(recognizer.recognize(image, gallery, bar.threshold, k=k), bar)


def identify_faces(
    *, image: Any, k: int | None = None, threshold: float | None = None, match: str | None = None
) -> list[Recognition]:
    """The faces of ``identify`` without the threshold record."""
    return identify(image=image, k=k, threshold=threshold, match=match).faces
