"""1:1 verification: are the subjects of two photos, or of a photo and a member, the same person?

The decision uses the configured model's verification threshold (``ModelSpec``); a photo
against a member reads the member's template of the same model and dimension, never another's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from faceengine.errors import FacesiteError
from facesite import engine
from members import selectors as member_selectors

VIEW_MEMBERS = "members.view_member"


class VerificationRefused(FacesiteError):
    """The caller may not compare a photo with a member."""

    code = "permission_denied"
    http_status = 403


class NoFaceInPhoto(FacesiteError):
    code = "no_face"


@dataclass
class Verification:
    model: str
    similarity: float
    threshold: float
    member_id: int | None
    face: Any  # faceengine.recognizer.Face
    face2: Any | None

    @property
    def same_person(self) -> bool:
        return self.similarity >= self.threshold

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "similarity": round(self.similarity, 4),
            "threshold": self.threshold,
            "same_person": self.same_person,
            "member_id": self.member_id,
            "face": self.face.to_dict(),
            "face2": self.face2.to_dict() if self.face2 is not None else None,
        }


def _primary_face(recognizer: Any, raw: bytes, label: str) -> tuple[Any, np.ndarray]:
    """The subject's face and its normalised embedding; a photo without a face is refused.

    Not ``Recognizer.embed_primary``: its blind centre-crop fallback is fine for a gallery, not
    for a same-person decision (and it fails on photos of a few pixels).
    """
    from faceengine.detection import primary_face_index
    from faceengine.recognizer import Face

    rgb = recognizer.load(raw)
    found, how = recognizer.detector.detect_thorough(rgb)
    if not found:
        raise NoFaceInPhoto(f"No face was found in {label}.")
    best = found[primary_face_index(found, rgb.shape)]
    x, y, w, h = best.box
    face = Face(
        (float(x), float(y), float(w), float(h)),
        float(best.score),
        np.asarray(best.landmarks, np.float32),
        detector=best.detector,
        detection=how,
    )
    vector = np.asarray(recognizer.embed_faces(rgb, [face])[0], np.float64)
    return face, vector / (np.linalg.norm(vector) or 1.0)


def verify(*, user: Any, image: bytes, image2: bytes | None = None, member_id: int | None = None) -> Verification:
    """Compare ``image`` with ``image2`` (any caller) or with the member ``member_id``.

    A photo against a member says whether the photo is that member: a read of the gallery,
    so it needs ``members.view_member``, checked before the member is looked up (ids cannot be
    probed). The member is read before any engine work: a 404 costs no engine run.
    """
    if (image2 is None) == (member_id is None):
        raise FacesiteError("Give exactly one of image2 and member_id.", code="invalid_input")
    if member_id is not None and not user.has_perm(VIEW_MEMBERS):
        raise VerificationRefused(f"Comparing a photo with a member needs permission to view members ({VIEW_MEMBERS}).")
    recognizer = engine.recognizer()
    other = None
    if member_id is not None:
        other = member_selectors.member_template_vector(
            member_id=member_id, model_name=recognizer.model_name, dim=recognizer.dim
        )
    face, vector = _primary_face(recognizer, image, "image")
    face2 = None
    if other is None:
        assert image2 is not None
        face2, other = _primary_face(recognizer, image2, "image2")
    threshold = float(engine.active_model_spec().verification_threshold)  # the model's 1:1 bar
    return Verification(
        model=recognizer.model_name,
        similarity=float(np.dot(vector, other)),
        threshold=threshold,
        member_id=member_id,
        face=face,
        face2=face2,
    )
