"""Enrolment quality with the real engine on LFW photos: a wrong person's photo in an enrolment is
flagged and left out of the template until staff confirm it; a clean set flags nothing; a
blurred face is marked; the API, the pages, the admin and backups carry the record."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from accounts.services import token_create
from faceengine.index import normalize_rows
from facesite.engine import active_model_spec
from members import selectors, services
from members.backup import gallery_export, gallery_import
from members.models import AuditEntry, Embedding, FaceSample, Template
from tests.fakes import lfw_photos

pytestmark = pytest.mark.django_db

FACES = "/api/v1/members/{}/faces"


@pytest.fixture
def photos(lfw_dir, real_recognizer):
    return {name: lfw_photos(lfw_dir, name) for name in ("Colin_Powell", "Tony_Blair")}


def enrol_with_intruder(photos):
    """4 photos of Colin Powell and 1 of Tony Blair, Blair's third."""
    powell, blair = photos["Colin_Powell"], photos["Tony_Blair"]
    result = services.member_create(display_name="Colin Powell", photos=[*powell[:2], blair[0], *powell[2:4]])
    faces = list(FaceSample.objects.filter(member=result.member).order_by("id"))
    return result, faces


def member_template(member) -> Template:
    return Template.objects.get(member=member, model_name=active_model_spec().name)


def mean_of(faces) -> np.ndarray:
    vectors = [Embedding.objects.get(face=f, model_name=active_model_spec().name).as_array() for f in faces]
    return normalize_rows(np.stack(vectors)).astype(np.float64).mean(axis=0)


def test_a_wrong_persons_photo_is_flagged_and_left_out_until_confirmed(photos):
    result, faces = enrol_with_intruder(photos)
    intruder, powell = faces[2], [f for i, f in enumerate(faces) if i != 2]
    threshold = active_model_spec().verification_threshold
    assert intruder.status == FaceSample.Status.FLAGGED
    assert intruder.outlier_similarity < threshold
    assert intruder.outlier_model == active_model_spec().name
    assert all(f.status == FaceSample.Status.OK and f.outlier_similarity > threshold for f in powell)
    assert [o.flagged for o in result.outcomes] == [False, False, True, False, False]
    template = member_template(result.member)
    assert template.count == 4 and result.template_count == 4
    assert np.allclose(template.as_array(), mean_of(powell), atol=1e-5)
    created = AuditEntry.objects.get(action=AuditEntry.Action.CREATE, member_id=result.member.pk)
    assert created.changes["flagged_face_ids"] == [intruder.pk]

    assert services.member_face_confirm(faces=[intruder.pk]) == 1
    intruder.refresh_from_db()
    assert intruder.status == FaceSample.Status.CONFIRMED
    template = member_template(result.member)
    assert template.count == 5
    assert np.allclose(template.as_array(), mean_of(faces), atol=1e-5)
    assert AuditEntry.objects.get(action=AuditEntry.Action.CONFIRM_FACES).changes == {"face_ids": [intruder.pk]}
    assert services.member_face_confirm(faces=[intruder.pk]) == 0  # not flagged any more
    # Confirmed stays confirmed when the faces change.
    services.member_add_faces(member=result.member, photos=[photos["Colin_Powell"][5]])
    intruder.refresh_from_db()
    assert intruder.status == FaceSample.Status.CONFIRMED and member_template(result.member).count == 6


def test_nearest_sample_matching_leaves_a_flagged_face_out_until_confirmed(photos):
    result, faces = enrol_with_intruder(photos)
    intruder, spec = faces[2], active_model_spec()
    blair = Embedding.objects.get(face=intruder, model_name=spec.name).as_array()

    def nearest_sample():
        samples = selectors.gallery_for_model(model_name=spec.name, dim=spec.dim, match="sample")
        ((best,),) = samples.search(blair[None], k=1)
        return len(samples), best

    # Blair's own face would answer "Colin Powell" at similarity 1 if it were indexed.
    count, best = nearest_sample()
    assert count == 4 == selectors.gallery_vector_count(model_name=spec.name, dim=spec.dim, match="sample")
    assert best.label == result.member.pk and best.similarity < spec.verification_threshold
    services.member_face_confirm(faces=[intruder.pk])
    count, best = nearest_sample()
    assert count == 5 and best.similarity > 0.99


def test_a_clean_set_flags_nothing(photos):
    result = services.member_create(display_name="Colin Powell", photos=photos["Colin_Powell"][:6])
    faces = FaceSample.objects.filter(member=result.member)
    threshold = active_model_spec().verification_threshold
    assert len(faces) == 6 and all(f.status == FaceSample.Status.OK for f in faces)
    assert all(f.outlier_similarity > threshold for f in faces)
    assert member_template(result.member).count == 6


def test_flags_are_checked_again_when_faces_are_added_or_deleted(photos):
    powell, blair = photos["Colin_Powell"], photos["Tony_Blair"]
    member = services.member_create(display_name="Colin Powell", photos=[powell[0], blair[0]]).member
    # One other face only: which of the two is wrong cannot be told, nothing is flagged.
    assert set(FaceSample.objects.filter(member=member).values_list("status", flat=True)) == {"ok"}
    assert FaceSample.objects.filter(member=member, outlier_similarity__isnull=False).count() == 0
    services.member_add_faces(member=member, photos=[powell[1], powell[2]])
    flagged = FaceSample.objects.get(member=member, status=FaceSample.Status.FLAGGED)
    assert flagged.photo.name and member_template(member).count == 3
    assert flagged.pk == FaceSample.objects.filter(member=member).order_by("id")[1].pk  # Blair's
    # Deleting two of Powell's faces leaves one other again: the flag goes, the face is back in.
    services.face_delete(faces=list(FaceSample.objects.filter(member=member, status="ok").order_by("id")[:2]))
    flagged.refresh_from_db()
    assert flagged.status == FaceSample.Status.OK and member_template(member).count == 2
    entry = AuditEntry.objects.get(action=AuditEntry.Action.DELETE_FACES)
    assert entry.changes["cleared_face_ids"] == [flagged.pk]


def blurred_jpeg(path) -> bytes:
    image = cv2.imread(str(path))
    ok, data = cv2.imencode(".jpg", cv2.GaussianBlur(image, (0, 0), 2.5))
    assert ok
    return data.tobytes()


def test_a_blurred_photo_is_marked_and_the_record_is_stored(photos):
    powell = photos["Colin_Powell"]
    result = services.member_create(
        display_name="Colin Powell", photos=[powell[1], ("blurred.jpg", blurred_jpeg(powell[2]))]
    )
    sharp, blurred = FaceSample.objects.filter(member=result.member).order_by("id")
    assert blurred.quality_warnings == ["blurry"] and result.outcomes[1].warnings == ["blurry"]
    assert sharp.quality_warnings == [] and sharp.sharpness > 3 * blurred.sharpness
    assert 30 < sharp.eye_distance < 60 and sharp.yaw is not None and sharp.pitch is not None
    assert sharp.roll is not None


# ------------------------------------------------------------------------------ API and pages


def client_of(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=user, name='tests')[1]}")
    return client


def user_with(django_user_model, name, *codenames, staff=False):
    user = django_user_model.objects.create_user(name, password=f"pw-{name}-1", is_staff=staff)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="members", codename__in=codenames))
    return user


def test_the_api_returns_the_record_and_confirms_with_the_change_permission(photos, django_user_model):
    result, faces = enrol_with_intruder(photos)
    intruder = faces[2]
    manager = client_of(user_with(django_user_model, "manager", "view_member", "change_member"))
    viewer = client_of(user_with(django_user_model, "viewer", "view_member"))
    listed = viewer.get(FACES.format(result.member.pk)).json()
    assert [f["status"] for f in listed] == ["ok", "ok", "flagged", "ok", "ok"]
    assert [f["in_template"] for f in listed] == [True, True, False, True, True]
    record = listed[2]
    assert record["outlier_similarity"] < active_model_spec().verification_threshold
    assert set(record["quality"]) == {
        "eye_distance",
        "box_size",
        "sharpness",
        "detection_score",
        "yaw",
        "pitch",
        "roll",
        "warnings",
    }
    assert record["quality"]["sharpness"] > 0 and isinstance(record["quality"]["warnings"], list)

    url = f"{FACES.format(result.member.pk)}/{intruder.pk}/confirm"
    refused = viewer.post(url)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    assert APIClient().post(url).status_code in (401, 403)
    intruder.refresh_from_db()
    assert intruder.status == FaceSample.Status.FLAGGED
    assert manager.post(f"{FACES.format(result.member.pk)}/999999/confirm").status_code == 404
    done = manager.post(url)
    assert done.status_code == 200
    assert done.json()["confirmed"] is True and done.json()["face"]["status"] == "confirmed"
    assert member_template(result.member).count == 5
    assert manager.post(url).json()["confirmed"] is False


def test_the_member_page_shows_flags_and_the_confirm_button_to_staff_who_may_change(photos, client, django_user_model):
    result, faces = enrol_with_intruder(photos)
    intruder = faces[2]
    page = f"/members/{result.member.pk}/"
    confirm = f"/members/faces/{intruder.pk}/confirm"
    client.force_login(user_with(django_user_model, "looker", "view_member", staff=True))
    html = client.get(page).content.decode()
    assert "flagged" in html and "left out of recognition" in html and confirm not in html
    assert client.post(confirm).status_code == 403
    intruder.refresh_from_db()
    assert intruder.status == FaceSample.Status.FLAGGED

    client.force_login(user_with(django_user_model, "editor", "view_member", "change_member", staff=True))
    assert confirm in client.get(page).content.decode()
    assert client.post(confirm).status_code == 302
    intruder.refresh_from_db()
    assert intruder.status == FaceSample.Status.CONFIRMED
    assert "confirmed" in client.get(page).content.decode()
    # The enrol page, adding to this member, lists its faces with their record too.
    assert "Photos of this member so far" in client.get(f"/members/enrol/?member={result.member.pk}").content.decode()


def test_the_admin_lists_status_and_confirms(photos, admin_client):
    _, faces = enrol_with_intruder(photos)
    listing = admin_client.get("/admin/members/facesample/?status=flagged").content.decode()
    assert "flagged" in listing and "sharpness" in listing
    response = admin_client.post(
        "/admin/members/facesample/", {"action": "confirm_faces", "_selected_action": [faces[2].pk]}
    )
    assert response.status_code == 302
    faces[2].refresh_from_db()
    assert faces[2].status == FaceSample.Status.CONFIRMED


def test_a_backup_carries_the_record_and_the_flags(photos, tmp_path, media_root):
    result, faces = enrol_with_intruder(photos)
    before = {str(f.uuid): (f.status, f.outlier_similarity, f.quality_warnings, f.sharpness, f.yaw) for f in faces}
    archive = tmp_path / "gallery.zip"
    gallery_export(out=archive)
    services.member_delete(member=result.member)
    gallery_import(source=archive)
    restored = FaceSample.objects.all()
    assert {
        str(f.uuid): (f.status, f.outlier_similarity, f.quality_warnings, f.sharpness, f.yaw) for f in restored
    } == before
    assert Template.objects.get().count == 4  # the backup's template, the intruder still left out
