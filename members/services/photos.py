"""The engine step of every enrolment: read each photo, find its largest face, embed it and
measure its quality (faceengine.quality).

No database and no locks here: this runs before any transaction opens.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings

from faceengine.errors import EngineError, ImageError, ImageTooLarge
from faceengine.quality import FaceQuality, assess_face
from facesite.uploads import photo_extension, read_upload, upload_name

from ..errors import (
    InvalidImage,
    NoFace,
)
from .results import PhotoOutcome, PhotoSource, Progress

if TYPE_CHECKING:
    from faceengine.recognizer import Recognizer


@dataclass
class PreparedPhoto:
    """A photo the engine accepted: its bytes, format and the embedded largest face."""

    outcome: PhotoOutcome
    data: bytes
    ext: str
    width: int
    height: int
    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray
    detection: str
    detector: str
    embedding: np.ndarray
    quality: FaceQuality | None = None


def _read_source(source: PhotoSource, index: int) -> tuple[str, bytes]:
    """(a name for reports, the bytes), reading at most the upload limit plus one byte."""
    limit = settings.FACESITE_MAX_UPLOAD_BYTES
    name = None
    if isinstance(source, tuple) and len(source) == 2:
        name, source = str(source[0]), source[1]
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = name or f"photo {index + 1}"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = name or path.name
        if not path.is_file():
            raise ImageError(f"No such file: {path.name}")
        if path.stat().st_size > limit:
            raise ImageTooLarge(f"The file is {path.stat().st_size} bytes; the limit is {limit}.")
        data = path.read_bytes()
    elif hasattr(source, "read"):
        name = name or upload_name(source, f"photo {index + 1}")
        data = read_upload(source, limit)
    else:
        raise ImageError(f"Cannot read a photo from a {type(source).__name__}.")
    if len(data) > limit:
        raise ImageTooLarge(f"The file is over the limit of {limit} bytes.")
    return name, data


def prepare_photos(
    photos: Sequence[PhotoSource], recognizer: Recognizer, progress: Progress | None = None
) -> tuple[list[PhotoOutcome], list[PreparedPhoto]]:
    """Run the engine on every photo: one face each, the largest; failures become outcomes."""
    outcomes: list[PhotoOutcome] = []
    prepared: list[PreparedPhoto] = []
    for index, source in enumerate(photos):
        outcome = PhotoOutcome(index=index, name=f"photo {index + 1}")
        outcomes.append(outcome)
        try:
            outcome.name, data = _read_source(source, index)
            rgb = recognizer.load(data)
            faces, how = recognizer.detector.detect_thorough(rgb)
            outcome.faces_found = len(faces)
            if not faces:
                outcome.code, outcome.message = NoFace.code, "No face was found in the photo."
                continue
            largest = max(faces, key=lambda f: float(f.box[2]) * float(f.box[3]))
            x, y, w, h = largest.box
            embedding = recognizer.embed_faces(rgb, [largest])[0]
            outcome.detection = how
            prepared.append(
                PreparedPhoto(
                    outcome=outcome,
                    data=data,
                    ext=photo_extension(data),
                    width=int(rgb.shape[1]),
                    height=int(rgb.shape[0]),
                    box=(float(x), float(y), float(w), float(h)),
                    score=float(largest.score),
                    landmarks=np.asarray(largest.landmarks, np.float32),
                    detection=outcome.detection,
                    detector=largest.detector,
                    embedding=np.asarray(embedding, np.float32),
                    quality=assess_face(rgb, largest.box, largest.landmarks, float(largest.score)),
                )
            )
        except EngineError as exc:
            outcome.code, outcome.message = exc.code, str(exc)
        except OSError as exc:
            outcome.code, outcome.message = ImageError.code, f"The photo cannot be read: {exc}"
        finally:
            if progress is not None:
                progress(1)
    return outcomes, prepared


def raise_if_nothing_usable(outcomes: list[PhotoOutcome], prepared: list[PreparedPhoto]) -> None:
    if prepared:
        return
    if outcomes and all(o.code != NoFace.code for o in outcomes):
        raise InvalidImage("None of the photos could be read as an image.", outcomes=outcomes)
    raise NoFace("No face was found in any of the photos.", outcomes=outcomes)
