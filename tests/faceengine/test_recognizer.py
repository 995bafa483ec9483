"""The whole pipeline on real photos: detection, alignment, embeddings, recognize."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from faceengine.errors import ImageError, ModelMismatch
from faceengine.gallery import Gallery
from tests.conftest import require_file

FR = "samples/face_recognition/examples"


def test_group_photos_find_every_face(recognizer):
    expected = {
        # Obama, Biden, and a girl half in shadow at the bottom right.
        f"{FR}/knn_examples/test/obama_and_biden.jpg": 3,
        f"{FR}/two_people.jpg": 2,
        "samples/deepface/couple.jpg": 2,
        f"{FR}/obama.jpg": 1,
    }
    for relative, count in expected.items():
        faces = recognizer.detect(require_file(relative))
        assert len(faces) == count, relative
        for face in faces:
            assert face.score >= 0.9 and face.landmarks.shape == (5, 2)
            x, y, w, h = face.box
            # Every landmark lies inside (or on the edge of) its face box.
            assert np.all(face.landmarks[:, 0] >= x - 0.1 * w) and np.all(face.landmarks[:, 0] <= x + 1.1 * w)
            assert np.all(face.landmarks[:, 1] >= y - 0.1 * h) and np.all(face.landmarks[:, 1] <= y + 1.1 * h)


def test_get_embd_returns_one_unit_vector_per_face(recognizer):
    embeddings, boxes = recognizer.get_embd(require_file(f"{FR}/knn_examples/test/obama_and_biden.jpg"))
    assert embeddings.shape == (3, 192) and boxes.shape == (3, 4)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_same_person_is_closer_than_different(recognizer, default_spec):
    obama1 = recognizer.embed_primary(require_file(f"{FR}/obama.jpg")).embedding
    obama2 = recognizer.embed_primary(require_file(f"{FR}/obama2.jpg")).embedding
    biden = recognizer.embed_primary(require_file(f"{FR}/biden.jpg")).embedding
    threshold = default_spec.verification_threshold
    assert float(obama1 @ obama2) >= threshold
    assert float(obama1 @ biden) < threshold


def test_recognize_names_both_people_in_a_group_photo(recognizer, default_spec):
    train = f"{FR}/knn_examples/train"
    labels, vectors = [], []
    for name, photo in [
        ("obama", "obama/obama.jpg"),
        ("biden", "biden/biden2.jpg"),
        ("kit", "kit_harington/john1.jpeg"),
        ("rose", "rose_leslie/img1.jpg"),
    ]:
        labels.append(name)
        vectors.append(recognizer.embed_primary(require_file(f"{train}/{photo}")).embedding)
    gallery = Gallery("mobilefacenet", 192, labels, np.stack(vectors))
    results = recognizer.recognize(
        require_file(f"{FR}/knn_examples/test/obama_and_biden.jpg"), gallery, default_spec.identification_threshold
    )
    named = [r for r in results if r.label is not None]
    assert sorted(r.label for r in named) == ["biden", "obama"]
    for result in named:
        assert result.similarity >= default_spec.identification_threshold
        assert result.margin > 0
    # Biden is on the left of that photo, Obama on the right; the girl is nobody we know.
    by_x = sorted(named, key=lambda r: r.box[0])
    assert [r.label for r in by_x] == ["biden", "obama"]
    unknown = [r for r in results if r.label is None]
    assert len(unknown) == 1 and unknown[0].similarity < default_spec.identification_threshold


def test_recognize_refuses_another_models_gallery(recognizer):
    gallery = Gallery("other-model", 192, ["x"], np.ones((1, 192), np.float32) / np.sqrt(192))
    with pytest.raises(ModelMismatch, match="cannot be compared"):
        recognizer.recognize(require_file(f"{FR}/obama.jpg"), gallery, 0.5)


def test_photo_without_a_face_gives_empty_result(recognizer):
    rng = np.random.default_rng(0)
    # Smooth noise: texture, no face.
    noise = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    image = np.asarray(Image.fromarray(noise).resize((640, 480), Image.BICUBIC))
    embeddings, boxes = recognizer.get_embd(image)
    assert embeddings.shape == (0, 192) and boxes.shape == (0, 4)
    assert recognizer.recognize(image, Gallery("mobilefacenet", 192), 0.5) == []


def test_primary_embedding_falls_back_to_centre_crop_and_says_so(recognizer):
    blank = np.full((250, 250, 3), 127, np.uint8)
    primary = recognizer.embed_primary(blank)
    assert primary.how == "fallback" and primary.face is None
    assert primary.embedding.shape == (192,)


def test_one_pixel_photo_falls_back_without_crashing(recognizer):
    primary = recognizer.embed_primary(np.zeros((1, 1, 3), np.uint8))
    assert primary.how == "fallback" and primary.embedding.shape == (192,)
    assert recognizer.detect(np.zeros((1, 1, 3), np.uint8)) == []


def test_bad_bytes_raise_a_clear_error(recognizer):
    with pytest.raises(ImageError):
        recognizer.get_embd(b"GIF89a but truncated")


def test_big_photo_is_downscaled_for_detection_but_landmarks_are_full_size(recognizer):
    """Detection on a 4x upscaled photo (capped to max_side) maps landmarks back to full size."""
    photo = np.asarray(Image.open(require_file(f"{FR}/obama.jpg")).convert("RGB"))
    big = np.asarray(Image.fromarray(photo).resize((photo.shape[1] * 4, photo.shape[0] * 4)))
    assert max(big.shape) > recognizer.detector.config.max_side
    small_faces = recognizer.detect(photo)
    big_faces = recognizer.detect(big)
    assert len(small_faces) == len(big_faces) == 1
    np.testing.assert_allclose(big_faces[0].landmarks / 4, small_faces[0].landmarks, atol=3)
    # The same person either way.
    a = recognizer.embed_primary(photo).embedding
    b = recognizer.embed_primary(big).embedding
    assert float(a @ b) > 0.9


def test_exif_rotated_photo_finds_the_face(recognizer):
    """A portrait stored sideways with an EXIF orientation tag is turned upright first."""
    photo = Image.open(require_file(f"{FR}/obama.jpg")).convert("RGB")
    sideways = photo.rotate(90, expand=True)  # stored rotated; tag 6 says "turn 90 clockwise"
    exif = sideways.getexif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    sideways.save(buffer, "JPEG", exif=exif, quality=95)
    faces = recognizer.detect(buffer.getvalue())
    assert len(faces) == 1
    upright = recognizer.detect(require_file(f"{FR}/obama.jpg"))
    np.testing.assert_allclose(faces[0].box, upright[0].box, atol=6)


def test_second_pass_finds_a_face_in_a_photo_stored_sideways(recognizer):
    """No EXIF tag, the pixels themselves turned: the normal pass finds nothing; the thorough
    pass turns the photo, finds the face and maps it back, and the embedding matches the
    upright photo's."""
    base = "samples/insightface/cpp-package/inspireface/test_res/data/rotate"
    upright = recognizer.embed_primary(require_file(f"{base}/rot_0.jpg"))
    assert upright.how == "detected"
    # (rot_270.jpg is left out: MTCNN's normal pass "finds" that sideways face, with
    # landmarks that make no sense, so the second pass never runs; a known limit.)
    for name in ("rot_90.jpg", "rot_180.jpg"):
        path = require_file(f"{base}/{name}")
        primary = recognizer.embed_primary(path)
        assert primary.how == "rotated", name
        x, y, w, h = primary.face.box
        height, width = recognizer.load(path).shape[:2]
        assert x >= 0 and y >= 0 and x + w <= width + 1 and y + h <= height + 1
        assert float(primary.embedding @ upright.embedding) > 0.6, name


def test_unrotate_maps_points_back():
    from faceengine.detection import _unrotate_points

    image = np.zeros((40, 60, 3), np.uint8)  # h=40, w=60
    point = np.array([[10.0, 5.0]], np.float32)  # x=10, y=5 in the original
    for turns in (1, 2, 3):
        turned = np.rot90(image.copy(), turns)
        marked = image.copy()
        marked[5, 10] = 255
        ys, xs = np.nonzero(np.rot90(marked, turns)[:, :, 0])
        found = np.array([[xs[0], ys[0]]], np.float32)
        assert turned.shape[:2] == np.rot90(marked, turns).shape[:2]
        np.testing.assert_allclose(_unrotate_points(found, turns, image.shape), point)
