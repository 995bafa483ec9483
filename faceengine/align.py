"""Alignment: a similarity transform of the 5 landmarks onto the 112x112 ArcFace template."""

from __future__ import annotations

import cv2
import numpy as np

# The standard ArcFace template (insightface): left eye, right eye, nose, left and right mouth
# corners, in a 112x112 crop. "Left" is the person's right eye, i.e. the one on the image's left.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)
ALIGNED_SIZE = 112


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src onto dst.

    Umeyama's closed form; returns the 2x3 matrix for cv2.warpAffine.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1  # a reflection is not a similarity: flip the weakest axis instead
    rotation = u @ sign @ vt
    src_var = (src_c**2).sum() / len(src)
    scale = (singular * np.diag(sign)).sum() / src_var if src_var > 0 else 1.0
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]]).astype(np.float32)


# A profile: the nose lies outside the span of the two eyes by more than this share of their
# distance (the head is turned past about 45 degrees), so one eye is hidden and its landmark is
# a guess, often on the cheek's edge or the ear.
PROFILE_NOSE_OUTSIDE = 0.1


def eye_frame(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """The landmarks in the frame of the eye line (x along it from the left eye, y down), and
    the eye distance."""
    points = np.asarray(landmarks, np.float64).reshape(5, 2)
    axis = points[1] - points[0]
    distance = float(np.hypot(*axis))
    if distance < 1e-6:
        return points - points[0], 0.0
    ux, uy = axis / distance
    rotation = np.array([[ux, uy], [-uy, ux]])
    return (points - points[0]) @ rotation.T, distance


def is_profile(landmarks: np.ndarray) -> bool:
    local, distance = eye_frame(landmarks)
    if distance == 0.0:
        return True
    nose_x = local[2, 0] / distance
    return bool(nose_x < -PROFILE_NOSE_OUTSIDE or nose_x > 1 + PROFILE_NOSE_OUTSIDE)


def is_upright(landmarks: np.ndarray, max_tilt_degrees: float = 60.0) -> bool:
    """The landmarks describe a face the right way up: the eye on the image's left is left of
    the other, the eye line tilts less than ``max_tilt_degrees``, the mouth is below the eyes.
    A detector that finds a sideways or upside-down face still puts its landmarks in upright
    order; aligning on those would give a crop turned by a quarter or a half."""
    points = np.asarray(landmarks, np.float64).reshape(5, 2)
    dx, dy = points[1] - points[0]
    if dx <= 0 or abs(np.degrees(np.arctan2(dy, dx))) > max_tilt_degrees:
        return False
    local, _ = eye_frame(points)
    return bool(local[3, 1] > 0 and local[4, 1] > 0 and local[2, 1] > 0)


def _alignment_points(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(points, template points) to fit. All five for a face seen from the front; for a profile
    the hidden eye's landmark is a guess, so the fit uses what does not depend on it: the eyes'
    midpoint, the nose and the mouth's midpoint (no crop then puts an ear where an eye belongs)."""
    points = np.asarray(landmarks, np.float32).reshape(5, 2)
    if not is_profile(points):
        return points, ARCFACE_TEMPLATE

    def central(p: np.ndarray) -> np.ndarray:
        return np.stack([(p[0] + p[1]) / 2, p[2], (p[3] + p[4]) / 2])

    return central(points), central(ARCFACE_TEMPLATE)


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """Warp one face to a size x size crop (RGB uint8) with its landmarks on the template."""
    points, template = _alignment_points(landmarks)
    matrix = similarity_transform(points, template * (size / ALIGNED_SIZE))
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)


def center_crop(image: np.ndarray, size: int = ALIGNED_SIZE, fraction: float = 0.7) -> np.ndarray:
    """The blind fallback when no face is found: the middle of the photo, resized.

    LFW-style photos are centred on the face, which covers about 70% of the shorter side at most.
    """
    h, w = image.shape[:2]
    side = max(1, int(min(h, w) * fraction))  # a photo of a few pixels still gives a crop
    top, left = (h - side) // 2, (w - side) // 2
    crop = image[top : top + side, left : left + side]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
