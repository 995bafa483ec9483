"""/detect, /embeddings and /verify with the real engine on LFW photos, and every image error."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from members import services

from .conftest import error_code, grey_png, upload

pytestmark = pytest.mark.django_db


def b64(path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_detect_multipart(api, photos):
    response = api.post("/api/v1/detect", {"image": upload(photos["Colin_Powell"][0])}, format="multipart")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["image"] == {"width": 250, "height": 250}
    face = max(body["faces"], key=lambda f: f["box"][2] * f["box"][3])
    assert 40 < face["box"][2] < 200 and face["score"] > 0.9 and len(face["landmarks"]) == 5
    assert "embedding" not in face
    assert face["detector"] == "mtcnn" and face["detection"] == "detected"


def test_detect_gives_a_sideways_photo_the_thorough_pass(api):
    """The normal pass finds no face in a photo stored sideways; /detect answers with the face
    the thorough pass found, and says so."""
    from tests.conftest import require_file

    path = require_file("samples/insightface/cpp-package/inspireface/test_res/data/rotate/rot_90.jpg")
    response = api.post("/api/v1/detect", {"image": upload(path)}, format="multipart")
    assert response.status_code == 200, response.content
    faces = response.json()["faces"]
    assert len(faces) == 1 and faces[0]["detection"] == "rotated" and faces[0]["detector"] in ("mtcnn", "yunet")


def test_detect_json_base64_and_data_uri(api, photos):
    data = b64(photos["Tony_Blair"][0])
    for value in (data, "data:image/jpeg;base64," + data):
        response = api.post("/api/v1/detect", {"image": value}, format="json")
        assert response.status_code == 200 and response.json()["faces"]


def test_embeddings(api, photos, real_recognizer):
    response = api.post("/api/v1/embeddings", {"image": upload(photos["Colin_Powell"][1])}, format="multipart")
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == real_recognizer.model_name and body["dim"] == real_recognizer.dim
    vectors, _boxes = real_recognizer.get_embd(photos["Colin_Powell"][1].read_bytes())
    assert len(body["faces"]) == len(vectors)
    assert np.allclose(body["faces"][0]["embedding"], vectors[0], atol=1e-4)


def test_verify_two_photos(api, photos):
    same = api.post(
        "/api/v1/verify",
        {"image": upload(photos["Colin_Powell"][0]), "image2": upload(photos["Colin_Powell"][5])},
        format="multipart",
    )
    assert same.status_code == 200, same.content
    body = same.json()
    assert body["same_person"] is True and body["similarity"] >= body["threshold"]
    assert body["face"] and body["face2"] and body["member_id"] is None
    other = api.post(
        "/api/v1/verify",
        {"image": b64(photos["Colin_Powell"][0]), "image2": b64(photos["Hugo_Chavez"][0])},
        format="json",
    )
    assert other.status_code == 200 and other.json()["same_person"] is False


def test_verify_against_a_member(api, photos):
    member = services.member_create(display_name="Tony Blair", photos=photos["Tony_Blair"][:3]).member
    response = api.post(
        "/api/v1/verify", {"image": upload(photos["Tony_Blair"][8]), "member_id": member.pk}, format="multipart"
    )
    assert response.status_code == 200
    assert response.json()["same_person"] is True and response.json()["face2"] is None
    stranger = api.post(
        "/api/v1/verify", {"image": upload(photos["Hugo_Chavez"][1]), "member_id": member.pk}, format="multipart"
    )
    assert stranger.json()["same_person"] is False


def test_verify_errors(api, photos):
    image = upload(photos["Tony_Blair"][0])
    missing = api.post("/api/v1/verify", {"image": image, "member_id": 999999}, format="multipart")
    assert missing.status_code == 404 and error_code(missing) == "member_not_found"
    faceless_member = services.member_create(display_name="No photos").member
    no_template = api.post(
        "/api/v1/verify",
        {"image": upload(photos["Tony_Blair"][0]), "member_id": faceless_member.pk},
        format="multipart",
    )
    assert no_template.status_code == 422 and error_code(no_template) == "no_template"
    no_face = api.post(
        "/api/v1/verify", {"image": upload(grey_png()), "image2": upload(photos["Tony_Blair"][0])}, format="multipart"
    )
    assert no_face.status_code == 422 and error_code(no_face) == "no_face"
    both = api.post("/api/v1/verify", {"image": upload(grey_png())}, format="multipart")
    assert both.status_code == 400 and error_code(both) == "invalid_request"


@pytest.mark.parametrize("endpoint", ["/api/v1/detect", "/api/v1/embeddings", "/api/v1/recognize"])
def test_image_errors(endpoint, api, photos, settings):
    jpeg = photos["Colin_Powell"][0].read_bytes()
    cases = [
        ({"image": upload(b"%PDF-1.4 not an image", "photo.jpg")}, 415, "unsupported_image_type"),
        ({"image": upload(jpeg[: len(jpeg) // 2])}, 400, "invalid_image"),  # truncated JPEG
        ({"image": upload(b"")}, 400, "invalid_image"),
        ({}, 400, "invalid_request"),
    ]
    for data, status, code in cases:
        response = api.post(endpoint, data, format="multipart")
        assert (response.status_code, error_code(response)) == (status, code), (data, response.content)
    bad_b64 = api.post(endpoint, {"image": "not base64 at all!"}, format="json")
    assert bad_b64.status_code == 400 and error_code(bad_b64) == "invalid_image"
    # A content check, not a name check: a JPEG called .txt is fine, a text called .jpg is not.
    renamed = api.post(endpoint, {"image": upload(jpeg, "notes.txt")}, format="multipart")
    assert renamed.status_code in (200, 202)
    settings.FACESITE_MAX_UPLOAD_BYTES = 1000
    too_big = api.post(endpoint, {"image": upload(jpeg)}, format="multipart")
    assert too_big.status_code == 413 and error_code(too_big) == "image_too_large"
    too_big_b64 = api.post(endpoint, {"image": base64.b64encode(jpeg).decode()}, format="json")
    assert too_big_b64.status_code == 413 and error_code(too_big_b64) == "image_too_large"


def test_a_request_over_the_limit_is_refused_before_it_is_read(api, settings, monkeypatch):
    settings.FACESITE_API_MAX_REQUEST_BYTES = 10_000
    read = []
    monkeypatch.setattr("recognition.api.ImageInput.is_valid", lambda *a, **k: read.append(1))
    response = api.post("/api/v1/detect", {"image": upload(b"x" * 20_000)}, format="multipart")
    assert response.status_code == 413 and error_code(response) == "request_too_large"
    assert not read


def test_a_malformed_json_body_is_400(api):
    response = api.generic("POST", "/api/v1/detect", "{not json", content_type="application/json")
    assert response.status_code == 400 and error_code(response) == "malformed_request"


def test_an_unsupported_request_type_is_415(api):
    response = api.generic("POST", "/api/v1/detect", "<image/>", content_type="application/xml")
    assert response.status_code == 415 and error_code(response) == "unsupported_media_type"
