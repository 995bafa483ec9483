"""Face detection around MTCNN: downscaling big photos, filters, and a harder second pass.

MTCNN's cost grows with the pixel count, and a face needs far fewer pixels to be found than to
be recognised; so detection runs on a copy capped at ``max_side`` and the boxes and landmarks
are mapped back, letting alignment cut the face from the full-resolution photo.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from .mtcnn_fast import DetectedFace, MTCNNDetector

# The second pass, used only where a face must be found (a verification photo, an enrolment):
# MTCNN misses profiles and small faces at its defaults; lower stage thresholds on an upscaled
# copy recover most of them, at the price of false positives that the normal pass avoids.
SECOND_PASS_THRESHOLDS = (0.5, 0.6, 0.7)
SECOND_PASS_MIN_SCORE = 0.7
SECOND_PASS_TARGET_SIDE = 500


@dataclass(frozen=True)
class DetectorConfig:
    min_face_size: int = 20
    # Leave out the two largest pyramid levels: faces under about 40 px of the detection copy
    # (20 / 0.709**2) are not looked for, which saves two thirds of P-Net's work. Measured: the
    # same LFW result to the last pair and the same faces on the 148 sample photos at 640 px as
    # with every level (see MTCNNDetector and the README); 0 looks for faces down to 20 px.
    skip_finest_levels: int = 2
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.8)
    max_side: int = 1024
    min_score: float = 0.9
    backend: str = "tflite"
    num_threads: int | None = None
    cache_dir: Path | None = None


class FaceDetector:
    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        self._mtcnn = self._build(self.config.thresholds, self.config.min_face_size, self.config.skip_finest_levels)
        self._second_pass: MTCNNDetector | None = None

    def _build(
        self, thresholds: tuple[float, float, float], min_face_size: int, skip_finest_levels: int = 0
    ) -> MTCNNDetector:
        # min_face_size applies to the (possibly downscaled) copy MTCNN sees: on a photo capped
        # to max_side, the smallest face found is min_face_size / scale original pixels.
        return MTCNNDetector(
            min_face_size=min_face_size,
            thresholds=thresholds,
            backend=self.config.backend,
            num_threads=self.config.num_threads,
            cache_dir=self.config.cache_dir,
            skip_finest_levels=skip_finest_levels,
        )

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        """All faces at least ``min_face_size`` px and ``min_score`` confident, best first."""
        return self._detect(image, self._mtcnn, self.config.max_side, self.config.min_face_size, self.config.min_score)

    def detect_thorough(self, image: np.ndarray) -> tuple[list[DetectedFace], bool]:
        """The normal pass, then, if it found nothing, the second pass (upright, then turned a
        quarter, three quarters and half a turn). Returns (faces, found_by_second_pass)."""
        faces = self.detect(image)
        if faces:
            return faces, False
        if self._second_pass is None:
            self._second_pass = self._build(SECOND_PASS_THRESHOLDS, 12)
        long_side = max(image.shape[:2])
        # Upscale small photos so a face filling a third of them reaches MTCNN's sweet spot.
        target = max(SECOND_PASS_TARGET_SIDE, min(long_side, self.config.max_side))
        faces = self._detect(image, self._second_pass, target, 12, SECOND_PASS_MIN_SCORE, allow_upscale=True)
        if faces:
            return faces, True
        # A photo stored sideways or upside down without an EXIF tag: MTCNN only finds
        # upright faces, so look at the three other orientations and map the faces back.
        for quarter_turns in (1, 3, 2):
            turned = np.ascontiguousarray(np.rot90(image, quarter_turns))
            faces = self._detect(turned, self._second_pass, target, 12, SECOND_PASS_MIN_SCORE, allow_upscale=True)
            if faces:
                return [_unrotate(face, quarter_turns, image.shape) for face in faces], True
        return [], True

    def _detect(
        self,
        image: np.ndarray,
        mtcnn: MTCNNDetector,
        max_side: int,
        min_size: int,
        min_score: float,
        allow_upscale: bool = False,
    ) -> list[DetectedFace]:
        h, w = image.shape[:2]
        if min(h, w) < 12:
            return []
        scale = max_side / max(h, w)
        if scale >= 1 and not allow_upscale:
            scale = 1.0
        if scale != 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            work = cv2.resize(image, size, interpolation=interpolation)
        else:
            work = image
        found = []
        for face in mtcnn.detect(work):
            mapped = _rescale(face, 1.0 / scale) if scale != 1.0 else face
            if mapped.score >= min_score and min(mapped.box[2], mapped.box[3]) >= min_size:
                found.append(mapped)
        return found


def _rescale(face: DetectedFace, factor: float) -> DetectedFace:
    x, y, w, h = face.box
    return replace(
        face,
        box=(x * factor, y * factor, w * factor, h * factor),
        landmarks=(face.landmarks * factor).astype(np.float32),
    )


def _unrotate_points(points: np.ndarray, quarter_turns: int, shape: tuple[int, ...]) -> np.ndarray:
    """Map (x, y) points found in ``np.rot90(image, quarter_turns)`` back onto ``image``."""
    h, w = shape[:2]
    x, y = points[:, 0], points[:, 1]
    if quarter_turns == 1:  # turned counter-clockwise
        mapped = (w - 1 - y, x)
    elif quarter_turns == 3:  # turned clockwise
        mapped = (y, h - 1 - x)
    else:  # upside down
        mapped = (w - 1 - x, h - 1 - y)
    return np.stack(mapped, axis=1).astype(np.float32)


def _unrotate(face: DetectedFace, quarter_turns: int, shape: tuple[int, ...]) -> DetectedFace:
    x, y, bw, bh = face.box
    corners = _unrotate_points(np.array([[x, y], [x + bw, y + bh]], np.float32), quarter_turns, shape)
    (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
    # The landmarks keep their identities (left eye stays the left eye): alignment then turns
    # the face upright.
    return replace(
        face,
        box=(float(x0), float(y0), float(x1 - x0), float(y1 - y0)),
        landmarks=_unrotate_points(face.landmarks, quarter_turns, shape),
    )


def primary_face_index(faces: list[DetectedFace], image_shape: tuple[int, ...]) -> int:
    """The subject of a portrait: big and near the centre (insightface's rule: area minus
    twice the squared distance from the centre)."""
    h, w = image_shape[:2]
    best, best_value = 0, -np.inf
    for index, face in enumerate(faces):
        x, y, bw, bh = face.box
        dx, dy = x + bw / 2 - w / 2, y + bh / 2 - h / 2
        value = bw * bh - 2.0 * (dx * dx + dy * dy)
        if value > best_value:
            best, best_value = index, value
    return best
