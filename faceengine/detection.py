"""Face detection: MTCNN or YuNet, downscaling big photos, filters, and a thorough pass.

MTCNN's cost grows with the pixel count, and a face needs far fewer pixels to be found than to
be recognised; so detection runs on a copy capped at ``max_side`` and the boxes and landmarks
are mapped back, letting alignment cut the face from the full-resolution photo.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from .align import is_upright
from .errors import ModelError
from .mtcnn_fast import DetectedFace, MTCNNDetector
from .yunet import YuNetDetector

# The second pass, used only where a face must be found (a verification photo, an enrolment):
# MTCNN misses profiles and small faces at its defaults; lower stage thresholds on an upscaled
# copy recover most of them, at the price of false positives that the normal pass avoids.
SECOND_PASS_THRESHOLDS = (0.5, 0.6, 0.7)
SECOND_PASS_MIN_SCORE = 0.7
SECOND_PASS_TARGET_SIDE = 500


Detect = Callable[[np.ndarray], list[DetectedFace]]
DETECTORS = ("mtcnn", "yunet")
# What found a photo's faces: the normal pass, or a step of the thorough pass (in its order).
PASSES = ("detected", "second_detector", "second_pass", "rotated")
# Faces that fill the frame or touch the border: both detectors need some background around a
# face, so the thorough pass pads the photo by this share of its long side on every side.
PAD_SHARE = 0.25
# The thorough pass looks for the subject of a photo (a portrait, a crop, an enrolment photo),
# so it keeps only faces of at least this share of the photo's long side: lowered thresholds
# otherwise "find" faces of a few pixels in a landscape's texture.
THOROUGH_MIN_FACE_SHARE = 0.05
# An upright face found this surely by a thorough step is taken without trying turned copies.
CONFIDENT_UPRIGHT = 0.9


@dataclass(frozen=True)
class DetectorConfig:
    # The normal pass. MTCNN by default: measured in benchmarks/detection.py, it keeps LFW at
    # 99.30% where YuNet's landmarks give less, and the thorough pass below adds YuNet's recall
    # to the photos MTCNN finds nothing in, at no cost to the others.
    detector: str = "mtcnn"
    # The second detector of the thorough pass ("yunet", "mtcnn" or None for none). Used only
    # when its model file is known (``yunet_model``; ``faceengine.load`` fills it in).
    fallback: str | None = "yunet"
    yunet_model: Path | None = None
    yunet_score: float = 0.6
    min_face_size: int = 20
    # Leave out the two largest pyramid levels: faces under about 40 px of the detection copy
    # (20 / 0.709**2) are not looked for, which saves two thirds of P-Net's work. Measured: the
    # same LFW result to the last pair and the same faces on the 148 sample photos at 640 px as
    # with every level (see MTCNNDetector and docs/engine.md); 0 looks for faces down to 20 px.
    skip_finest_levels: int = 2
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.8)
    max_side: int = 1024
    min_score: float = 0.9
    backend: str = "tflite"
    num_threads: int | None = None
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ModelError(f"detector must be one of {DETECTORS}, got {self.detector!r}.")
        if self.fallback is not None and self.fallback not in DETECTORS:
            raise ModelError(f"fallback must be one of {DETECTORS} or None, got {self.fallback!r}.")


@dataclass(frozen=True)
class _Step:
    """One step of the thorough pass: a detector and the filters of its results."""

    how: str
    detect: Detect
    max_side: int
    min_size: int
    min_score: float
    upscale: bool = False


class FaceDetector:
    """The normal pass with one detector; ``detect_thorough`` tries much harder, but only on a
    photo where the normal pass found nothing, so photos with faces cost nothing extra."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        self._mtcnn: MTCNNDetector | None = None
        self._second_pass: MTCNNDetector | None = None
        self._yunet: YuNetDetector | None = None
        self._primary(self.config.detector)  # build the normal pass now: a bad model fails here

    # --- the detectors, built on first use

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

    def _primary(self, name: str) -> Detect:
        if name == "yunet":
            return self._yunet_detector().detect
        if self._mtcnn is None:
            self._mtcnn = self._build(self.config.thresholds, self.config.min_face_size, self.config.skip_finest_levels)
        return self._mtcnn.detect

    def _yunet_detector(self) -> YuNetDetector:
        if self._yunet is None:
            if self.config.yunet_model is None:
                raise ModelError("The YuNet detector needs its model file (yunet_model).")
            self._yunet = YuNetDetector(
                self.config.yunet_model, score_threshold=self.config.yunet_score, num_threads=self.config.num_threads
            )
        return self._yunet

    def _mtcnn_second_pass(self) -> Detect:
        if self._second_pass is None:
            self._second_pass = self._build(SECOND_PASS_THRESHOLDS, 12)
        return self._second_pass.detect

    @property
    def has_fallback(self) -> bool:
        fallback = self.config.fallback
        return (
            fallback is not None
            and fallback != self.config.detector
            and (fallback != "yunet" or self.config.yunet_model is not None)
        )

    # --- the passes

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        """All faces at least ``min_face_size`` px and ``min_score`` confident, best first."""
        detect = self._primary(self.config.detector)
        min_score = self.config.min_score if self.config.detector == "mtcnn" else self.config.yunet_score
        return self._detect(image, detect, self.config.max_side, self.config.min_face_size, min_score)

    def detect_thorough(self, image: np.ndarray) -> tuple[list[DetectedFace], str]:
        """The normal pass; if it found nothing, the thorough pass: the second detector on the
        photo padded (faces that fill the frame), then MTCNN at lower thresholds on an upscaled
        padded copy, each also on the photo turned a quarter, three quarters and half a turn (a
        photo stored sideways without an EXIF tag). Returns (faces, the pass that found them: one
        of ``PASSES``; "detected" also when none did)."""
        faces = self.detect(image)
        if faces:
            return faces, "detected"
        for step in self._thorough_steps(image):
            found = self._best_orientation(image, step)
            if found is not None:
                quarter_turns, faces = found
                if quarter_turns == 0:
                    return faces, step.how
                return [_unrotate(face, quarter_turns, image.shape) for face in faces], "rotated"
        return [], "detected"

    def _best_orientation(self, image: np.ndarray, step: _Step) -> tuple[int, list[DetectedFace]] | None:
        """(quarter turns, faces) of the orientation where ``step`` is surest of its best face.

        YuNet finds a face lying on its side or upside down too, but puts its landmarks in
        upright order, and a crop aligned on them would be turned; the right orientation is the
        one the detector is surest of. An upright face found with confidence ends the search.
        """
        best: tuple[int, list[DetectedFace]] | None = None
        for quarter_turns in (0, 1, 3, 2):
            turned = image if quarter_turns == 0 else np.ascontiguousarray(np.rot90(image, quarter_turns))
            faces = self._detect_padded(turned, step)
            if not faces:
                continue
            if best is None or max(f.score for f in faces) > max(f.score for f in best[1]):
                best = (quarter_turns, faces)
            if quarter_turns == 0 and max(f.score for f in faces) >= CONFIDENT_UPRIGHT:
                break
        return best

    def _thorough_steps(self, image: np.ndarray) -> list[_Step]:
        long_side = max(image.shape[:2])
        # Upscale small photos so a face filling a third of them reaches MTCNN's sweet spot.
        target = max(SECOND_PASS_TARGET_SIDE, min(long_side, self.config.max_side))
        subject = max(self.config.min_face_size, round(THOROUGH_MIN_FACE_SHARE * long_side))
        steps: list[_Step] = []
        if self.has_fallback:
            second: Detect
            if self.config.fallback == "yunet":
                second, score = self._yunet_detector().detect, self.config.yunet_score
            else:
                second, score = self._primary("mtcnn"), self.config.min_score
            steps.append(_Step("second_detector", second, self.config.max_side, subject, score))
        # MTCNN's own second pass may look for smaller faces (12 px) on small photos only.
        second_pass_min = subject if long_side >= 240 else min(subject, 12)
        steps.append(
            _Step(
                "second_pass", self._mtcnn_second_pass(), target, second_pass_min, SECOND_PASS_MIN_SCORE, upscale=True
            )
        )
        return steps

    def _detect_padded(self, image: np.ndarray, step: _Step) -> list[DetectedFace]:
        pad = round(PAD_SHARE * max(image.shape[:2]))
        padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        # The padded copy is bigger: its detection copy is capped in proportion, so the photo
        # itself is seen at the same scale as without the border.
        side = round(step.max_side * (1 + 2 * PAD_SHARE))
        found = self._detect(padded, step.detect, side, step.min_size, step.min_score, step.upscale)
        # YuNet also finds faces lying on their side or upside down, with landmarks in upright
        # order all the same: such a face is left to the turned copies, which align it right.
        return [_clip(_shift(face, -pad), image.shape) for face in found if is_upright(face.landmarks)]

    def _detect(
        self,
        image: np.ndarray,
        detect: Detect,
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
        for face in detect(work):
            mapped = _rescale(face, 1.0 / scale) if scale != 1.0 else face
            if mapped.score >= min_score and min(mapped.box[2], mapped.box[3]) >= min_size:
                found.append(mapped)
        return found


def _shift(face: DetectedFace, offset: float) -> DetectedFace:
    x, y, w, h = face.box
    return replace(face, box=(x + offset, y + offset, w, h), landmarks=(face.landmarks + offset).astype(np.float32))


def _clip(face: DetectedFace, shape: tuple[int, ...]) -> DetectedFace:
    """The box inside the photo (a face at the border was found partly on the padding); the
    landmarks stay where they are: alignment fills what lies outside the photo."""
    h, w = shape[:2]
    x, y, bw, bh = face.box
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(w), x + bw), min(float(h), y + bh)
    return replace(face, box=(x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0)))


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
