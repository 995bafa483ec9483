"""Enrolment quality of one detected face: its size, sharpness, detector score and pose.

Everything is measured from what detection already gives (box, 5 landmarks, score) and the
photo; the sharpness is taken on the aligned 112x112 grey crop, the picture the embedder sees,
so one number means the same for a 250-pixel portrait and a 4000-pixel group photo (a small
face upscaled to 112 pixels is blurry there, as it is for the embedder).

The pose is an estimate from the 5 landmarks, in degrees:

* roll: the angle of the eye line;
* yaw: the nose tip sits in front of the eye plane by about half the eye distance, so its
  sideways offset from the eyes' midpoint, over half the eye distance, is tan(yaw); 45 degrees
  is the nose over one eye (``faceengine.align.PROFILE_NOSE_OUTSIDE`` calls past that a profile);
* pitch: the nose's place between the eye line and the mouth line moves with tan(pitch) from
  where the ArcFace template has it (positive: the head bent down), less ``PITCH_OFFSET``.

The warning thresholds are named constants below, each with how it was chosen (measured on LFW
and the sample photos with ``benchmarks/enrolment_quality.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from .align import ALIGNED_SIZE, ARCFACE_TEMPLATE, align_face, eye_frame

# Stable warning codes (clients branch on them).
SMALL_FACE = "small_face"
BLURRY = "blurry"
TURNED = "turned"
LOW_SCORE = "low_score"
WARNING_CODES = (SMALL_FACE, BLURRY, TURNED, LOW_SCORE)

# Thresholds, from `benchmarks/enrolment_quality.py` on 3,839 LFW photos (311 people with 6 or
# more photos, 1,500 strangers) and the 160 faces of the sample photos; the numbers are in
# docs/benchmarks.md#enrolment-quality. Each flags about the worst 1-2% of LFW.
#
# Eye distance in pixels of the photo: LFW's 1st percentile is 31. A face shrunk to 20 pixels
# between the eyes keeps a cosine of 0.98 to its full-size embedding, one shrunk to 12 only
# 0.91; below 20 the aligned crop (35 pixels between the eyes) is upscaled 1.75x or more.
MIN_EYE_DISTANCE = 20.0
# Variance of the Laplacian of the aligned grey crop: LFW's 1st percentile is 37, its 2nd 47; a
# Gaussian blur of sigma 1 leaves a median of 55 (cosine 0.99 to the sharp face), sigma 2 one of
# 18 (cosine 0.91): 40 flags 1.2% of LFW and 99% of the sigma-2 faces.
MIN_SHARPNESS = 40.0
# Degrees; LFW's worst 2% of |yaw| is past 35.5, of |pitch| (with PITCH_OFFSET) past 28.8: "turned"
# marks 3.8% of LFW and 5.6% of the sample faces.
MAX_YAW = 35.0
MAX_PITCH = 30.0
# MTCNN scores 99% of LFW faces above 0.96; below 0.95 the detector was unsure.
MIN_SCORE = 0.95
# MTCNN's nose landmark sits lower between the eyes and the mouth than the ArcFace template's:
# the median LFW face reads 6.5 degrees of pitch against the template. Subtracted, so the typical
# frontal portrait reads 0.
PITCH_OFFSET = 6.5

# The ArcFace template's nose between the eye line (0) and the mouth line (1), and the template's
# eye-to-mouth height over the nose's depth (half the eye distance): the frontal reference of
# the pitch estimate.
_TEMPLATE_EYE_Y = float(ARCFACE_TEMPLATE[:2, 1].mean())
_TEMPLATE_MOUTH_Y = float(ARCFACE_TEMPLATE[3:, 1].mean())
_TEMPLATE_NOSE_SHARE = (float(ARCFACE_TEMPLATE[2, 1]) - _TEMPLATE_EYE_Y) / (_TEMPLATE_MOUTH_Y - _TEMPLATE_EYE_Y)
_TEMPLATE_EYE_DISTANCE = float(ARCFACE_TEMPLATE[1, 0] - ARCFACE_TEMPLATE[0, 0])
_NOSE_DEPTH = 0.5  # of the eye distance
_HEIGHT_OVER_DEPTH = (_TEMPLATE_MOUTH_Y - _TEMPLATE_EYE_Y) / (_NOSE_DEPTH * _TEMPLATE_EYE_DISTANCE)


@dataclass(frozen=True)
class Pose:
    yaw: float
    pitch: float
    roll: float


@dataclass(frozen=True)
class FaceQuality:
    """The quality record of one face; ``warnings`` holds codes of ``WARNING_CODES``."""

    eye_distance: float  # pixels of the photo between the two eye landmarks
    box_size: float  # the shorter side of the detector's box, pixels of the photo
    sharpness: float  # variance of the Laplacian of the aligned 112x112 grey crop
    score: float  # the detector's score
    yaw: float
    pitch: float
    roll: float
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {
            "eye_distance": round(self.eye_distance, 1),
            "box_size": round(self.box_size, 1),
            "sharpness": round(self.sharpness, 1),
            "score": round(self.score, 4),
            "yaw": round(self.yaw, 1),
            "pitch": round(self.pitch, 1),
            "roll": round(self.roll, 1),
            "warnings": list(self.warnings),
        }


def estimate_pose(landmarks: np.ndarray) -> Pose:
    """Yaw, pitch and roll in degrees from the 5 landmarks (see the module's docstring)."""
    points = np.asarray(landmarks, np.float64).reshape(5, 2)
    dx, dy = points[1] - points[0]
    roll = float(np.degrees(np.arctan2(dy, dx)))
    local, distance = eye_frame(points)
    if distance < 1e-6:
        return Pose(yaw=90.0, pitch=0.0, roll=roll)
    nose_x, nose_y = local[2]
    yaw = float(np.degrees(np.arctan((nose_x - distance / 2) / (_NOSE_DEPTH * distance))))
    mouth_y = float(local[3:, 1].mean())
    if mouth_y <= 1e-6:  # the mouth not below the eyes: no frontal reference to measure from
        return Pose(yaw=yaw, pitch=90.0, roll=roll)
    share = nose_y / mouth_y
    pitch = float(np.degrees(np.arctan((share - _TEMPLATE_NOSE_SHARE) * _HEIGHT_OVER_DEPTH))) - PITCH_OFFSET
    return Pose(yaw=yaw, pitch=pitch, roll=roll)


def sharpness(aligned_rgb: np.ndarray) -> float:
    """Variance of the Laplacian of an aligned crop, resized to 112x112 grey first."""
    crop = np.asarray(aligned_rgb)
    if crop.shape[:2] != (ALIGNED_SIZE, ALIGNED_SIZE):
        crop = cv2.resize(crop, (ALIGNED_SIZE, ALIGNED_SIZE), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    return float(cv2.Laplacian(grey.astype(np.float64), cv2.CV_64F).var())


def quality_warnings(eye_distance: float, sharpness_value: float, score: float, pose: Pose) -> tuple[str, ...]:
    """The warning codes the measurements earn, in the order of ``WARNING_CODES``."""
    found = []
    if eye_distance < MIN_EYE_DISTANCE:
        found.append(SMALL_FACE)
    if sharpness_value < MIN_SHARPNESS:
        found.append(BLURRY)
    if abs(pose.yaw) > MAX_YAW or abs(pose.pitch) > MAX_PITCH:
        found.append(TURNED)
    if score < MIN_SCORE:
        found.append(LOW_SCORE)
    return tuple(found)


def assess_face(
    rgb: np.ndarray,
    box: Sequence[float],
    landmarks: np.ndarray,
    score: float,
    *,
    aligned: np.ndarray | None = None,
) -> FaceQuality:
    """The quality record of one face of an RGB photo (``aligned``: its crop, if already made)."""
    points = np.asarray(landmarks, np.float64).reshape(5, 2)
    crop = aligned if aligned is not None else align_face(rgb, points.astype(np.float32), ALIGNED_SIZE)
    eye_distance = float(np.hypot(*(points[1] - points[0])))
    pose = estimate_pose(points)
    sharp = sharpness(crop)
    return FaceQuality(
        eye_distance=eye_distance,
        box_size=float(min(box[2], box[3])),
        sharpness=sharp,
        score=float(score),
        yaw=pose.yaw,
        pitch=pose.pitch,
        roll=pose.roll,
        warnings=quality_warnings(eye_distance, sharp, float(score), pose),
    )
