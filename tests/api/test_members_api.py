"""Members through the API with the real engine on LFW photos: enrol, list, read, update,
faces (average / replace / delete), delete, bulk zip; and the errors, with nothing half-created."""

from __future__ import annotations

import io
import zipfile

import pytest

from members.models import Embedding, FaceSample, Member, Template

from .conftest import error_code, grey_png, upload

pytestmark = pytest.mark.django_db

MEMBERS = "/api/v1/members"


def enrol(api, name, paths, **extra):
    data = {"display_name": name, "photos": [upload(p, p.name) for p in paths], **extra}
    return api.post(MEMBERS, data, format="multipart")


def test_create_with_photos_then_read_list_and_search(api, photos):
    response = enrol(api, "Colin Powell", photos["Colin_Powell"][:3], external_id="cp-1")
    assert response.status_code == 201, response.content
    body = response.json()
    member = body["member"]
    assert member["display_name"] == "Colin Powell" and member["external_id"] == "cp-1"
    assert member["face_count"] == 3 and body["enrolment"]["template_count"] == 3
    assert [p["ok"] for p in body["enrolment"]["photos"]] == [True, True, True]
    assert api.get(member["url"]).json()["id"] == member["id"]
    enrol(api, "Tony Blair", photos["Tony_Blair"][:1])
    listing = api.get(MEMBERS).json()
    assert listing["count"] == 2 and [m["display_name"] for m in listing["results"]] == ["Colin Powell", "Tony Blair"]
    assert [m["display_name"] for m in api.get(MEMBERS, {"search": "blair"}).json()["results"]] == ["Tony Blair"]
    assert api.get(MEMBERS, {"search": "cp-1"}).json()["count"] == 1


def test_create_reports_photos_without_a_face_but_keeps_the_good_ones(api, photos):
    data = {"display_name": "Hugo", "photos": [upload(photos["Hugo_Chavez"][0]), upload(grey_png(), "grey.png")]}
    body = api.post(MEMBERS, data, format="multipart").json()
    outcomes = body["enrolment"]["photos"]
    assert outcomes[0]["ok"] and not outcomes[1]["ok"] and outcomes[1]["code"] == "no_face"
    assert body["member"]["face_count"] == 1


def test_create_json_with_base64_photos(api, photos):
    import base64

    data = {"display_name": "JSON", "photos": [base64.b64encode(photos["Tony_Blair"][2].read_bytes()).decode()]}
    response = api.post(MEMBERS, data, format="json")
    assert response.status_code == 201 and response.json()["member"]["face_count"] == 1


def test_create_without_photos(api):
    response = api.post(MEMBERS, {"display_name": "Later"}, format="json")
    assert response.status_code == 201 and response.json()["member"]["face_count"] == 0


def test_no_half_created_member(api, photos, media_root):
    no_face = api.post(MEMBERS, {"display_name": "Ghost", "photos": [upload(grey_png(), "g.png")]}, format="multipart")
    assert no_face.status_code == 422 and error_code(no_face) == "no_face"
    assert no_face.json()["error"]["details"]["photos"][0]["code"] == "no_face"
    not_image = api.post(
        MEMBERS, {"display_name": "Ghost", "photos": [upload(b"just text", "a.jpg")]}, format="multipart"
    )
    assert not_image.status_code == 415 and error_code(not_image) == "unsupported_image_type"
    broken = photos["Tony_Blair"][0].read_bytes()[:3000]
    truncated = api.post(MEMBERS, {"display_name": "Ghost", "photos": [upload(broken)]}, format="multipart")
    assert truncated.status_code == 400 and error_code(truncated) == "invalid_image"
    assert not Member.objects.exists() and not FaceSample.objects.exists()
    assert not [p for p in media_root.rglob("*") if p.is_file()]


def test_create_validation_and_duplicates(api):
    assert error_code(api.post(MEMBERS, {"display_name": ""}, format="json")) == "invalid_request"
    api.post(MEMBERS, {"display_name": "A", "external_id": "x1"}, format="json")
    duplicate = api.post(MEMBERS, {"display_name": "B", "external_id": "x1"}, format="json")
    assert duplicate.status_code == 409 and error_code(duplicate) == "duplicate_external_id"


def test_update_and_404s(api):
    member = api.post(MEMBERS, {"display_name": "Old"}, format="json").json()["member"]
    url = member["url"]
    patched = api.patch(url, {"notes": "met in 2020"}, format="json").json()
    assert patched["notes"] == "met in 2020" and patched["display_name"] == "Old"
    put = api.put(url, {"display_name": "New", "is_active": False}, format="json").json()
    assert put["display_name"] == "New" and put["is_active"] is False
    assert api.get(MEMBERS, {"active": "false"}).json()["count"] == 1
    for response in (
        api.get(f"{MEMBERS}/999999"),
        api.patch(f"{MEMBERS}/999999", {"notes": "x"}, format="json"),
        api.delete(f"{MEMBERS}/999999"),
        api.get(f"{MEMBERS}/999999/faces"),
        api.post(f"{MEMBERS}/999999/faces", {"photos": ["aGk="]}, format="json"),
        api.get(f"{MEMBERS}/{2**70}"),
    ):
        assert response.status_code == 404 and error_code(response) == "member_not_found", response.content
    # A path the routes cannot read, a newline in it included, is the API's JSON 404 too.
    for path in (f"{MEMBERS}/%0A%1B/faces", f"{MEMBERS}/abc", "/api/v1/no-such-thing%0A"):
        response = api.post(path)
        assert response.status_code == 404 and response["Content-Type"].startswith("application/json"), path


def test_faces_average_replace_list_and_delete(api, photos, media_root, django_capture_on_commit_callbacks):
    member = enrol(api, "Colin Powell", photos["Colin_Powell"][:2]).json()["member"]
    faces_url = f"{member['url']}/faces"
    added = api.post(faces_url, {"mode": "average", "photos": [upload(photos["Colin_Powell"][2])]}, format="multipart")
    assert added.status_code == 201 and added.json()["enrolment"]["template_count"] == 3
    listed = api.get(faces_url).json()
    assert len(listed) == 3 and all(f["photo_url"] and len(f["box"]) == 4 for f in listed)
    old_ids = {f["id"] for f in listed}
    with django_capture_on_commit_callbacks(execute=True):
        replaced = api.post(
            faces_url, {"mode": "replace", "photos": [upload(photos["Colin_Powell"][3])]}, format="multipart"
        )
    assert replaced.status_code == 201 and replaced.json()["enrolment"]["template_count"] == 1
    (face,) = api.get(faces_url).json()
    assert face["id"] not in old_ids
    assert len([p for p in media_root.rglob("*") if p.is_file()]) == 1
    no_face = api.post(faces_url, {"mode": "replace", "photos": [upload(grey_png(), "g.png")]}, format="multipart")
    assert no_face.status_code == 422 and error_code(no_face) == "no_face"
    assert [f["id"] for f in api.get(faces_url).json()] == [face["id"]]  # replace that failed changed nothing
    bad_mode = api.post(faces_url, {"mode": "merge", "photos": [upload(grey_png())]}, format="multipart")
    assert bad_mode.status_code == 400 and error_code(bad_mode) == "invalid_request"
    missing_face = api.delete(f"{faces_url}/999999")
    assert missing_face.status_code == 404 and error_code(missing_face) == "face_not_found"
    assert api.delete(f"{faces_url}/{face['id']}").status_code == 204
    assert api.get(faces_url).json() == []
    assert not Template.objects.filter(member_id=member["id"]).exists()


def test_delete_removes_everything(api, photos, media_root, django_capture_on_commit_callbacks):
    member = enrol(api, "Tony Blair", photos["Tony_Blair"][:2]).json()["member"]
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(member["url"]).status_code == 204
    assert not Member.objects.exists() and not FaceSample.objects.exists() and not Embedding.objects.exists()
    assert not Template.objects.exists()
    assert not [p for p in media_root.rglob("*") if p.is_file()]
    assert api.get(member["url"]).status_code == 404


# ------------------------------------------------------------------------------- bulk


def make_zip(entries: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    buffer.seek(0)
    buffer.name = "people.zip"
    return buffer


def test_bulk_zip_enrols_one_member_per_folder(
    api, photos, eager_celery, django_capture_on_commit_callbacks, media_root
):
    archive = make_zip(
        {
            "Colin_Powell/1.jpg": photos["Colin_Powell"][0].read_bytes(),
            "Colin_Powell/2.jpg": photos["Colin_Powell"][1].read_bytes(),
            "Tony_Blair/1.jpg": photos["Tony_Blair"][0].read_bytes(),
            "Tony_Blair/notes.txt": b"not a photo",
            "__MACOSX/._x": b"junk",
        }
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"{MEMBERS}/bulk", {"archive": archive}, format="multipart")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["people"] == 2 and body["files"] == 4 and response["Location"] == body["url"]
    status = api.get(body["url"]).json()
    assert status["status"] == "done"
    assert status["summary"]["members_created"] == 2 and status["summary"]["photos_added"] == 3
    assert sorted(Member.objects.values_list("display_name", flat=True)) == ["Colin Powell", "Tony Blair"]
    assert not (media_root / "bulk" / body["id"] / "people").exists()  # unpacked photos removed


@pytest.mark.parametrize(
    "entries, code",
    [
        ({"../evil/1.jpg": b"x"}, "invalid_zip"),
        ({"/abs/1.jpg": b"x"}, "invalid_zip"),
        ({"a\\..\\b/1.jpg": b"x"}, "invalid_zip"),
        ({"loose.jpg": b"x"}, "invalid_zip"),  # no person folder
    ],
)
def test_bulk_refuses_unsafe_zips(entries, code, api, media_root):
    response = api.post(f"{MEMBERS}/bulk", {"archive": make_zip(entries)}, format="multipart")
    assert response.status_code == 400 and error_code(response) == code
    assert not (media_root.parent / "evil").exists()
    assert not [p for p in media_root.rglob("*") if p.is_file()]


def test_bulk_refuses_bombs_and_non_zips(api, settings):
    bomb = make_zip({"p/big.jpg": b"\0" * 5_000_000})
    response = api.post(f"{MEMBERS}/bulk", {"archive": bomb}, format="multipart")
    assert response.status_code == 400 and "compressed" in response.json()["error"]["message"]
    not_zip = io.BytesIO(b"PK but not really")
    not_zip.name = "x.zip"
    response = api.post(f"{MEMBERS}/bulk", {"archive": not_zip}, format="multipart")
    assert response.status_code == 400 and error_code(response) == "invalid_zip"
    settings.FACESITE_API_MAX_ZIP_ENTRIES = 2
    many = make_zip({f"p/{i}.jpg": b"x" for i in range(3)})
    response = api.post(f"{MEMBERS}/bulk", {"archive": many}, format="multipart")
    assert response.status_code == 413
    settings.FACESITE_API_MAX_ZIP_BYTES = 100
    response = api.post(f"{MEMBERS}/bulk", {"archive": make_zip({"p/1.jpg": b"x" * 1000})}, format="multipart")
    assert response.status_code == 413 and error_code(response) == "request_too_large"


def test_bulk_status_is_private_and_404_when_unknown(api, reader, reader_api, photos, eager_celery):
    from django.contrib.auth.models import Permission

    archive = make_zip({"Tony_Blair/1.jpg": photos["Tony_Blair"][0].read_bytes()})
    url = api.post(f"{MEMBERS}/bulk", {"archive": archive}, format="multipart").json()["url"]
    assert api.get(url).status_code == 200
    reader.user_permissions.add(Permission.objects.get(codename="add_member"))
    for client, address in (
        (reader_api, url),
        (api, f"{MEMBERS}/bulk/{'0' * 32}"),
        (api, f"{MEMBERS}/bulk/..%2F..%2Fetc"),
    ):
        response = client.get(address)
        assert response.status_code == 404 and error_code(response) in ("bulk_not_found", "not_found")
