"""The recognizer: the old project's get_embd / align_face / recognize, done right.

One object holds a detector and an embedder; every method takes a photo (path, bytes or an RGB
array) and returns plain data. Faces of one photo are embedded in one batch.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .align import align_face as _align_one
from .align import center_crop
from .detection import FaceDetector, primary_face_index
from .embedders.base import Embedder
from .gallery import Gallery
from .images import ImageLimits, ImageSource, load_image
from .mtcnn_fast import DetectedFace

if TYPE_CHECKING:
    from .index import GalleryIndex


@dataclass
class Face:
    """One face of a photo: box (x, y, w, h), detection score, 5 landmarks, its embedding."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray
    embedding: np.ndarray | None = None
    detector: str = "mtcnn"  # which detector found it
    detection: str = "detected"  # which pass: "detected" (the normal one) or a thorough step

    def to_dict(self) -> dict:
        return {
            "box": [round(float(v), 1) for v in self.box],
            "score": round(float(self.score), 4),
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks],
            "detector": self.detector,
            "detection": self.detection,
        }


@dataclass
class Recognition(Face):
    """A face with its best gallery match; ``label`` is None for an unknown face."""

    label: Hashable | None = None
    similarity: float | None = None
    # How far ahead of the second-best member the best one is: a small margin means doubt.
    margin: float | None = None
    candidates: list = field(default_factory=list)

    def to_dict(self) -> dict:
        data = super().to_dict()
        data.update(
            {
                "label": self.label,
                "similarity": None if self.similarity is None else round(self.similarity, 4),
                "margin": None if self.margin is None else round(self.margin, 4),
            }
        )
        return data


@dataclass(frozen=True)
class PrimaryEmbedding:
    """The embedding of a portrait's subject and how it was found."""

    embedding: np.ndarray
    face: Face | None
    # "detected": the normal pass; "second_detector", "second_pass", "rotated": a step of the
    # thorough pass (faceengine.detection.PASSES);
    # "fallback": no face at all, the centre of the photo was embedded blindly.
    how: str


class Recognizer:
    def __init__(
        self, detector: FaceDetector, embedder: Embedder, *, flip: bool = False, limits: ImageLimits | None = None
    ) -> None:
        self.detector, self.embedder, self.flip = detector, embedder, flip
        self.limits = limits or ImageLimits()

    @property
    def model_name(self) -> str:
        return self.embedder.name

    @property
    def dim(self) -> int:
        return self.embedder.dim

    def load(self, image: ImageSource) -> np.ndarray:
        return load_image(image, self.limits)

    def detect(self, image: ImageSource) -> list[Face]:
        """Every face; a photo where the normal pass finds none gets the thorough pass."""
        return self._find(self.load(image))

    def _find(self, rgb: np.ndarray) -> list[Face]:
        found, how = self.detector.detect_thorough(rgb)
        return [_face(face, how) for face in found]

    def align_face(self, image: ImageSource, landmarks: Sequence[np.ndarray]) -> np.ndarray:
        """Aligned 112x112 RGB crops (n, 112, 112, 3), one per set of 5 landmarks."""
        rgb = self.load(image)
        size = self.embedder.convention.size
        crops = [_align_one(rgb, np.asarray(points), size) for points in landmarks]
        return np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)

    def embed_faces(self, rgb: np.ndarray, faces: Sequence[Face | DetectedFace]) -> np.ndarray:
        crops = self.align_face(rgb, [face.landmarks for face in faces])
        return self.embedder.embed(crops, flip=self.flip)

    def analyze(self, image: ImageSource) -> list[Face]:
        """Every face with box, score, landmarks and embedding."""
        rgb = self.load(image)
        faces = self._find(rgb)
        for face, vector in zip(faces, self.embed_faces(rgb, faces), strict=True):
            face.embedding = vector
        return faces

    def get_embd(self, image: ImageSource) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings (n, dim), boxes (n, 4) as x, y, w, h) for every face of the photo."""
        faces = self.analyze(image)
        embeddings = np.stack([_embedding(f) for f in faces]) if faces else np.zeros((0, self.dim), np.float32)
        boxes = np.array([f.box for f in faces], np.float32).reshape(-1, 4)
        return embeddings, boxes

    def recognize(
        self, image: ImageSource, gallery: Gallery | GalleryIndex, threshold: float, k: int = 3
    ) -> list[Recognition]:
        """Every face with its best member, or unknown below ``threshold`` (cosine)."""
        gallery.check_compatible(self.model_name, self.dim)
        faces = self.analyze(image)
        results = []
        vectors = np.stack([_embedding(f) for f in faces]) if faces else np.zeros((0, self.dim))
        for face, matches in zip(faces, gallery.search(vectors, k=max(k, 2)), strict=True):
            result = Recognition(
                face.box,
                face.score,
                face.landmarks,
                face.embedding,
                face.detector,
                face.detection,
                candidates=matches[:k],
            )
            if matches:
                best = matches[0]
                result.similarity = best.similarity
                result.margin = best.similarity - matches[1].similarity if len(matches) > 1 else None
                result.label = best.label if best.similarity >= threshold else None
            results.append(result)
        return results

    def embed_primary(self, image: ImageSource) -> PrimaryEmbedding:
        """The embedding of the photo's subject, trying hard before the blind centre crop."""
        rgb = self.load(image)
        found, how = self.detector.detect_thorough(rgb)
        if found:
            face = _face(found[primary_face_index(found, rgb.shape)], how)
            face.embedding = self.embed_faces(rgb, [face])[0]
            return PrimaryEmbedding(face.embedding, face, how)
        return PrimaryEmbedding(self.embed_center(rgb), None, "fallback")

    def embed_center(self, image: ImageSource) -> np.ndarray:
        """The blind fallback: the embedding of the centre of the photo, no detection."""
        crop = center_crop(self.load(image), self.embedder.convention.size)
        return self.embedder.embed(crop[None], flip=self.flip)[0]


def _face(found: DetectedFace, how: str = "detected") -> Face:
    x, y, w, h = found.box
    return Face(
        (float(x), float(y), float(w), float(h)),
        float(found.score),
        np.asarray(found.landmarks, np.float32),
        detector=found.detector,
        detection=how,
    )


def _embedding(face: Face) -> np.ndarray:
    if face.embedding is None:  # analyze() embeds every face it returns
        raise ValueError("The face has not been embedded.")
    return face.embedding
