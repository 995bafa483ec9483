"""The fast MTCNN against the mtcnn package it replaces (no Django, no database).

On real photos resized to 640 px, both backends must find the package's faces: the same number
with score >= 0.9, each matched box with IoU >= 0.9 and landmarks within 2 px.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceengine import mtcnn_fast
from faceengine.mtcnn_fast import DetectedFace, MTCNNDetector

DATA = Path(os.environ.get("FACESITE_TEST_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "faces"))
PHOTOS = [
    "samples/deepface/couple.jpg",
    "samples/deepface/selfie-many-people.jpg",
    "samples/face_recognition/examples/knn_examples/test/obama_and_biden.jpg",
    "samples/insightface/python-package/insightface/data/images/t1.jpg",
    "lfw/lfw-deepfunneled/George_W_Bush/George_W_Bush_0001.jpg",
    "lfw/lfw-deepfunneled/Serena_Williams/Serena_Williams_0001.jpg",
    "lfw/lfw-deepfunneled/Colin_Powell/Colin_Powell_0001.jpg",
]
TF_PHOTOS = PHOTOS[:2] + PHOTOS[4:5]
KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


def _load(path: Path, long_side: int = 640) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        scale = long_side / max(im.size)
        size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
        return np.asarray(im.resize(size, Image.Resampling.BILINEAR))


def _iou(a, b) -> float:
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _package_faces(result: list[dict]) -> list[tuple[tuple[float, ...], float, np.ndarray]]:
    return [
        (
            tuple(float(v) for v in f["box"]),
            float(f["confidence"]),
            np.array([f["keypoints"][k] for k in KEYPOINTS], np.float32),
        )
        for f in result
    ]


def _assert_same_faces(reference, faces: list[DetectedFace], photo: str) -> None:
    expected = [f for f in reference if f[1] >= 0.9]
    got = [f for f in faces if f.score >= 0.9]
    assert len(got) == len(expected), f"{photo}: {len(got)} faces >= 0.9, the package finds {len(expected)}"
    unused = list(got)
    for box, score, landmarks in expected:
        best = max(unused, key=lambda f: _iou(box, f.box))
        assert _iou(box, best.box) >= 0.9, f"{photo}: package box {box} best match {best.box}"
        assert np.abs(best.landmarks - landmarks).max() <= 2.0, (
            f"{photo}: landmarks {best.landmarks.tolist()} vs {landmarks.tolist()}"
        )
        assert best.score == pytest.approx(score, abs=1e-3)
        unused.remove(best)


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    if not DATA.is_dir():
        pytest.skip(f"{DATA} not found: set FACESITE_TEST_DATA to the shared faces folder")
    missing = [p for p in PHOTOS if not (DATA / p).is_file()]
    if missing:
        pytest.skip(f"{DATA / missing[0]} not found: set FACESITE_TEST_DATA to the shared faces folder")
    return {p: _load(DATA / p) for p in PHOTOS}


@pytest.fixture(scope="module")
def package():
    mtcnn = pytest.importorskip("mtcnn")
    return mtcnn.MTCNN()


@pytest.fixture(scope="module")
def reference(photos, package) -> dict[str, list]:
    return {p: _package_faces(package.detect_faces(im)) for p, im in photos.items()}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mtcnn-cache")


@pytest.fixture(scope="module")
def detector(cache_dir) -> MTCNNDetector:
    # Start from an empty in-memory cache, so this detector converts and writes its files even
    # when an earlier test in the session already converted the networks.
    mtcnn_fast._FLATBUFFERS.clear()
    return MTCNNDetector(cache_dir=cache_dir)


def test_tflite_finds_the_package_faces(photos, reference, detector):
    assert sum(len(r) for r in reference.values()) >= 15  # the photos do hold faces
    for photo, image in photos.items():
        _assert_same_faces(reference[photo], detector.detect(image), photo)


def test_tf_backend_finds_the_package_faces(photos, reference):
    detector = MTCNNDetector(backend="tf")
    for photo in TF_PHOTOS:
        _assert_same_faces(reference[photo], detector.detect(photos[photo]), photo)


def test_faces_are_sorted_and_well_formed(photos, detector):
    image = photos["samples/insightface/python-package/insightface/data/images/t1.jpg"]
    faces = detector.detect(image)
    assert len(faces) >= 5
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)
    h, w = image.shape[:2]
    for face in faces:
        assert isinstance(face, DetectedFace) and isinstance(face.score, float)
        x, y, bw, bh = face.box
        assert all(isinstance(v, float) for v in face.box)
        assert x >= 0 and y >= 0 and x + bw <= w and y + bh <= h and bw > 0 and bh > 0
        assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32
        left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
        assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
        assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


def test_min_face_size_40_finds_faces(photos, package, detector, cache_dir):
    # The package drops every face here: its pyramid reaches levels under 12 px, P-Net raises
    # on them, and detect_faces swallows the error. The fast detector skips those levels.
    image = photos["samples/deepface/couple.jpg"]
    assert package.detect_faces(image, min_face_size=40) == []
    big = MTCNNDetector(min_face_size=40, cache_dir=cache_dir).detect(image)
    normal = detector.detect(image)
    assert len(big) == len([f for f in normal if min(f.box[2:]) >= 40]) == 2
    for face in big:
        assert max(_iou(face.box, other.box) for other in normal) >= 0.8


@pytest.mark.parametrize("skip", [1, 2])
def test_skipping_finest_levels_keeps_the_larger_faces_as_they_were(photos, detector, cache_dir, skip):
    # Level i looks for faces of about 20 / 0.709**i px and up. Leaving out the finest levels
    # must not touch the faces the remaining levels find: same boxes, same landmarks, since
    # those levels are the package's own (a bigger min_face_size would move every scale).
    fast = MTCNNDetector(skip_finest_levels=skip, cache_dir=cache_dir)
    smallest = 20 / 0.709**skip
    compared = 0
    for photo, image in photos.items():
        full = detector.detect(image)
        reduced = fast.detect(image)
        big = [f for f in full if min(f.box[2:]) >= 1.2 * smallest and f.score >= 0.9]
        compared += len(big)
        for face in big:
            match = max(reduced, key=lambda f: _iou(face.box, f.box))
            assert _iou(face.box, match.box) >= 0.95, f"{photo}: {face.box} became {match.box}"
            assert np.abs(match.landmarks - face.landmarks).max() <= 1.0, photo
    assert compared >= len(photos)
    levels = mtcnn_fast._pyramid(480, 640, 20, 0.709)
    assert mtcnn_fast._pyramid(480, 640, 20, 0.709, skip) == levels[skip:]


def test_blank_tiny_and_odd_images_give_no_faces(detector):
    assert detector.detect(np.zeros((480, 640, 3), np.uint8)) == []
    assert detector.detect(np.full((300, 200, 3), 255, np.uint8)) == []
    assert detector.detect(np.zeros((10, 10, 3), np.uint8)) == []
    assert detector.detect(np.zeros((11, 500, 3), np.uint8)) == []
    assert detector.detect(np.zeros((1, 1, 3), np.uint8)) == []
    rng = np.random.default_rng(0)
    for shape in [(12, 12, 3), (13, 31, 3), (31, 13, 3), (12, 700, 3), (97, 61, 3)]:
        assert isinstance(detector.detect(rng.integers(0, 256, shape, dtype=np.uint8)), list)
    with pytest.raises(ValueError):
        detector.detect(np.zeros((100, 100), np.uint8))


def test_converted_models_are_cached_on_disk(photos, detector, cache_dir, monkeypatch):
    files = sorted(cache_dir.glob("mtcnn-*.tflite"))
    assert [f.name.split("-")[1] for f in files] == ["onet", "pnet", "rnet"]
    # Files of an older conversion are removed when a new one is written.
    stale = cache_dir / "mtcnn-pnet-0000000000000000.tflite"
    stale.write_bytes(b"old")
    mtcnn_fast._FLATBUFFERS.clear()
    for path in files:
        path.unlink()
    MTCNNDetector(cache_dir=cache_dir)
    assert not stale.exists()
    assert sorted(p.name for p in cache_dir.glob("mtcnn-*.tflite")) == [f.name for f in files]
    # A new process (no flatbuffers in memory) loads the files instead of converting again.
    monkeypatch.setattr(mtcnn_fast, "_FLATBUFFERS", {})
    monkeypatch.setattr(mtcnn_fast, "_build_functions", lambda *a: pytest.fail("converted again"))
    again = MTCNNDetector(cache_dir=cache_dir)
    image = photos["samples/deepface/couple.jpg"]
    assert [f.box for f in again.detect(image)] == [f.box for f in detector.detect(image)]
