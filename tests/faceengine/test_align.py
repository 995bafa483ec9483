"""Alignment: the similarity transform and the ArcFace template."""

from __future__ import annotations

import numpy as np

from faceengine.align import ARCFACE_TEMPLATE, align_face, center_crop, similarity_transform


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_recovers_a_known_similarity():
    angle, scale, shift = np.deg2rad(17), 2.5, np.array([40.0, -12.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = np.random.default_rng(0).uniform(0, 100, (5, 2))
    dst = scale * src @ rotation.T + shift
    matrix = similarity_transform(src, dst)
    np.testing.assert_allclose(_apply(matrix, src), dst, atol=1e-3)
    np.testing.assert_allclose(matrix[:, :2], scale * rotation, atol=1e-4)


def test_never_reflects():
    # Mirrored landmarks have no exact similarity; the fit must still be a rotation (det > 0).
    src = ARCFACE_TEMPLATE.copy()
    mirrored = src.copy()
    mirrored[:, 0] = 112 - mirrored[:, 0]
    matrix = similarity_transform(mirrored, src)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_aligned_crop_puts_landmarks_on_template():
    # Paint 5 dots where a tilted, scaled face's landmarks are; after alignment each dot must
    # sit on its template point.
    angle, scale, shift = np.deg2rad(-25), 3.0, np.array([150.0, 90.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = scale * ARCFACE_TEMPLATE @ rotation.T + shift
    image = np.zeros((600, 600, 3), np.uint8)
    for x, y in landmarks:
        image[round(y) - 3 : round(y) + 4, round(x) - 3 : round(x) + 4] = 255
    crop = align_face(image, landmarks)
    assert crop.shape == (112, 112, 3)
    for x, y in ARCFACE_TEMPLATE:
        assert crop[round(y), round(x)].min() > 200


def test_center_crop_shape():
    image = np.zeros((250, 180, 3), np.uint8)
    image[100:150, 70:110] = 255
    crop = center_crop(image)
    assert crop.shape == (112, 112, 3)
    assert crop[56, 56].min() == 255


def test_center_crop_of_a_tiny_photo():
    for shape in ((1, 1, 3), (2, 5, 3)):
        assert center_crop(np.full(shape, 9, np.uint8)).shape == (112, 112, 3)
