"""The thorough pass on real photos: the second detector (YuNet), padding for faces that fill the
frame, turned copies, profiles aligned without the hidden eye, and a photo without a face still
answered "no face". Every result says which detector and which pass found it."""

from __future__ import annotations

import numpy as np
import pytest

from faceengine.align import ARCFACE_TEMPLATE, is_profile, is_upright, similarity_transform
from tests.conftest import model_dir, require_file

pytestmark = pytest.mark.slow

DATA = "samples/insightface/cpp-package/inspireface/test_res/data"


@pytest.fixture(scope="module")
def engine():
    """The engine as ``faceengine.load`` builds it: MTCNN, and YuNet in the thorough pass."""
    import faceengine
    from faceengine.yunet import YUNET_FILE

    if not (model_dir() / YUNET_FILE.filename).is_file():
        pytest.skip(f"YuNet is not in {model_dir()}: run `manage.py fetch_models`")
    return faceengine.load(model_dir())


def tight_crop(rgb: np.ndarray, side: int) -> np.ndarray:
    top, left = (rgb.shape[0] - side) // 2, (rgb.shape[1] - side) // 2
    return np.ascontiguousarray(rgb[top : top + side, left : left + side])


def test_a_face_that_fills_the_frame_is_found_by_the_thorough_pass(engine):
    photo = engine.load(require_file("lfw/lfw-deepfunneled/George_Lopez/George_Lopez_0005.jpg"))
    crop = tight_crop(photo, 70)  # the face touches every border
    assert engine.detector.detect(crop) == []  # the normal pass misses it
    faces, how = engine.detector.detect_thorough(crop)
    assert len(faces) == 1 and how == "second_detector" and faces[0].detector == "yunet"
    x, y, w, h = faces[0].box
    assert x >= 0 and y >= 0 and x + w <= 70.5 and y + h <= 70.5  # mapped back from the padding
    # The same person as the whole photo: the crop is aligned on meaningful landmarks.
    whole = engine.embed_primary(photo)
    tight = engine.embed_faces(crop, [faces[0]])[0]
    assert float(whole.embedding @ tight) > 0.5


def test_faces_of_tight_crops_are_found_like_the_whole_photos(engine):
    paths = sorted(require_file("lfw/lfw-deepfunneled").glob("A*/*_0001.jpg"))[:40]
    crops = [tight_crop(engine.load(p), 75) for p in paths]
    normal = sum(bool(engine.detector.detect(c)) for c in crops)
    thorough = sum(bool(engine.detector.detect_thorough(c)[0]) for c in crops)
    assert thorough == len(crops) and normal < len(crops), (normal, thorough)


def test_a_photo_without_a_face_is_still_no_face(engine):
    landscape = engine.load(require_file(f"{DATA}/bulk/view.jpg"))
    assert engine.detector.detect_thorough(landscape) == ([], "detected")
    assert engine.detect(landscape) == []


def test_a_photo_turned_on_its_side_is_found_upright(engine):
    for name in ("rotate/rot_90.jpg", "rotate/rot_180.jpg", "bulk/r270.jpg"):
        faces = engine.detect(require_file(f"{DATA}/{name}"))
        assert len(faces) == 1 and faces[0].detection == "rotated", name
        # In the photo as stored, the mouth is where the turn put it: not below the eyes.
        assert not is_upright(faces[0].landmarks), name


def test_a_profile_is_aligned_without_its_hidden_eye(engine):
    faces = engine.detect(require_file(f"{DATA}/pose/left_face.jpeg"))
    assert faces and faces[0].detection == "detected"
    landmarks = faces[0].landmarks
    assert is_profile(landmarks)
    # The crop maps the eyes' midpoint, the nose and the mouth's midpoint onto the template's:
    # neither of the eye landmarks (one of them a guess) is forced onto a template eye.
    from faceengine.align import _alignment_points

    points, template = _alignment_points(landmarks)
    assert len(points) == 3
    matrix = similarity_transform(points, template)
    moved = np.hstack([landmarks, np.ones((5, 1))]) @ matrix.T
    nose_error = np.hypot(*(moved[2] - ARCFACE_TEMPLATE[2]))
    assert nose_error < 12
    frontal = engine.detect(require_file(f"{DATA}/rotate/rot_0.jpg"))
    assert not is_profile(frontal[0].landmarks)


def test_results_say_which_detector_and_pass_found_them(engine):
    photo = require_file("samples/face_recognition/examples/knn_examples/test/obama_and_biden.jpg")
    faces = engine.analyze(photo)
    assert len(faces) >= 2
    assert {(f.detector, f.detection) for f in faces} == {("mtcnn", "detected")}
    data = faces[0].to_dict()
    assert data["detector"] == "mtcnn" and data["detection"] == "detected"


def test_the_settings_may_choose_yunet_for_the_normal_pass(settings):
    """FACESITE_DETECTOR=yunet through the Django adapter: the normal pass is YuNet's, the
    thorough pass's second detector MTCNN."""
    import faceengine
    from facesite import engine as adapter
    from tests.conftest import require_yunet

    require_yunet(settings.FACESITE_MODEL_DIR)
    settings.FACESITE_ENGINE = {**settings.FACESITE_ENGINE, "DETECTOR": "yunet", "DETECTOR_FALLBACK": "mtcnn"}
    recognizer = faceengine.load(settings.FACESITE_MODEL_DIR, detector=adapter.detector_config())
    faces = recognizer.detect(require_file("samples/face_recognition/examples/obama.jpg"))
    assert len(faces) == 1 and faces[0].detector == "yunet" and faces[0].detection == "detected"
    assert adapter.detectors_in_use() == {"yunet", "mtcnn"}
