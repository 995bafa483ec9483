"""The quality record of a face (faceengine.quality) on real LFW photos: a sharp portrait earns no
warning, the same face blurred or shrunk earns the right ones, and the pose follows the face."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceengine.align import ARCFACE_TEMPLATE
from faceengine.quality import (
    BLURRY,
    LOW_SCORE,
    MAX_YAW,
    MIN_EYE_DISTANCE,
    SMALL_FACE,
    TURNED,
    Pose,
    assess_face,
    estimate_pose,
    quality_warnings,
)

# Frontal, sharp portraits (checked by eye): nothing to warn about.
PORTRAITS = (
    "Colin_Powell/Colin_Powell_0002.jpg",
    "Tony_Blair/Tony_Blair_0002.jpg",
    "George_W_Bush/George_W_Bush_0001.jpg",
)


def subject(recognizer, rgb: np.ndarray):
    faces = recognizer.detect(rgb)
    assert faces, "no face found"
    return max(faces, key=lambda f: f.box[2] * f.box[3])


@pytest.fixture(scope="module")
def portraits(lfw_dir, recognizer):
    out = []
    for relative in PORTRAITS:
        rgb = recognizer.load(str(lfw_dir / relative))
        out.append((rgb, subject(recognizer, rgb)))
    return out


def test_sharp_frontal_portraits_have_no_warnings(portraits):
    for rgb, face in portraits:
        quality = assess_face(rgb, face.box, face.landmarks, face.score)
        assert quality.warnings == (), quality
        assert 30 < quality.eye_distance < 60 and quality.box_size > 60
        assert abs(quality.yaw) < 20 and abs(quality.pitch) < 20 and abs(quality.roll) < 15


def test_a_blurred_face_is_blurry(portraits, recognizer):
    for rgb, face in portraits:
        sharp = assess_face(rgb, face.box, face.landmarks, face.score)
        blurred = cv2.GaussianBlur(rgb, (0, 0), 2.5)
        found = subject(recognizer, blurred)  # detected again, as an enrolment would
        quality = assess_face(blurred, found.box, found.landmarks, found.score)
        assert BLURRY in quality.warnings and SMALL_FACE not in quality.warnings
        assert quality.sharpness < sharp.sharpness / 4


def test_a_shrunk_face_is_small_and_the_sharpness_scale_follows_the_crop(portraits):
    for rgb, face in portraits:
        sharp = assess_face(rgb, face.box, face.landmarks, face.score)
        scale = 12 / sharp.eye_distance  # 12 pixels between the eyes
        small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        box = [v * scale for v in face.box]
        quality = assess_face(small, box, face.landmarks * scale, face.score)
        assert SMALL_FACE in quality.warnings
        assert quality.eye_distance < MIN_EYE_DISTANCE
        # Upscaled from a few pixels to 112, the crop is softer than the full-size one.
        assert quality.sharpness < sharp.sharpness


def test_the_pose_of_turned_and_raised_heads(lfw_dir, recognizer):
    # Checked by eye: Blair turns well to the image's left, Bush tips his head back.
    blair = recognizer.load(str(lfw_dir / "Tony_Blair" / "Tony_Blair_0001.jpg"))
    turned = estimate_pose(subject(recognizer, blair).landmarks)
    assert turned.yaw < -25 and abs(turned.pitch) < 20, turned
    bush = recognizer.load(str(lfw_dir / "George_W_Bush" / "George_W_Bush_0003.jpg"))
    face = subject(recognizer, bush)
    raised = estimate_pose(face.landmarks)
    assert raised.pitch < -25 and abs(raised.yaw) < 20, raised
    assert TURNED in assess_face(bush, face.box, face.landmarks, face.score).warnings


def test_a_mirrored_face_mirrors_its_yaw(lfw_dir, recognizer):
    # A face turned to one side: its mirror image turns the other way by as much.
    rgb = recognizer.load(str(lfw_dir / "Tony_Blair" / "Tony_Blair_0001.jpg"))
    face = subject(recognizer, rgb)
    mirrored = np.ascontiguousarray(rgb[:, ::-1])
    other = subject(recognizer, mirrored)
    pose, mirror_pose = estimate_pose(face.landmarks), estimate_pose(other.landmarks)
    assert abs(pose.yaw + mirror_pose.yaw) < 6, (pose, mirror_pose)
    assert abs(pose.pitch - mirror_pose.pitch) < 6, (pose, mirror_pose)


def test_a_rotated_photo_changes_the_roll_only(portraits, recognizer):
    rgb, face = portraits[0]
    before = estimate_pose(face.landmarks)
    h, w = rgb.shape[:2]
    # Positive angles turn the image counter-clockwise: the eye line tilts up to the right.
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 15, 1.0)
    rotated = cv2.warpAffine(rgb, matrix, (w, h))
    after = estimate_pose(subject(recognizer, rotated).landmarks)
    assert abs((after.roll - before.roll) + 15) < 4, (before, after)
    assert abs(after.yaw - before.yaw) < 6 and abs(after.pitch - before.pitch) < 6, (before, after)


def test_pose_from_landmarks_geometry():
    template = ARCFACE_TEMPLATE.astype(np.float64)
    frontal = estimate_pose(template)
    assert abs(frontal.yaw) < 1 and abs(frontal.roll) < 1
    # Rotating the whole face in the image plane is roll only.
    angle = np.radians(20)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rolled = estimate_pose(template @ rotation.T)
    assert abs(rolled.roll - 20) < 0.5 and abs(rolled.yaw - frontal.yaw) < 0.5
    # The nose over one eye is 45 degrees of yaw; the sign says which way.
    turned = template.copy()
    turned[2, 0] = template[1, 0]
    pose = estimate_pose(turned)
    assert 40 < pose.yaw < 50 and pose.yaw > MAX_YAW
    # A nose nearer the mouth: the head bent down (positive pitch).
    down = template.copy()
    down[2, 1] += 10
    assert estimate_pose(down).pitch > frontal.pitch + 20


def test_warning_codes_follow_the_thresholds():
    frontal = Pose(yaw=0.0, pitch=0.0, roll=0.0)
    assert quality_warnings(40.0, 150.0, 0.999, frontal) == ()
    assert quality_warnings(40.0, 150.0, 0.5, frontal) == (LOW_SCORE,)
    assert quality_warnings(40.0, 150.0, 0.999, Pose(yaw=50.0, pitch=0.0, roll=0.0)) == (TURNED,)
    assert quality_warnings(10.0, 5.0, 0.999, frontal) == (SMALL_FACE, BLURRY)
