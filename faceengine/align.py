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


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """Warp one face to a size x size crop (RGB uint8) with its landmarks on the template."""
    template = ARCFACE_TEMPLATE * (size / ALIGNED_SIZE)
    matrix = similarity_transform(np.asarray(landmarks, dtype=np.float32).reshape(5, 2), template)
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
