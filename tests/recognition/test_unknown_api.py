"""Unknown people through the API and the pages: shapes, permissions, merge, split, dismiss,
appearances (fake engine: plumbing; the behaviour on real faces is in test_unknown_people.py)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.services import token_create
from members import services as member_services
from members.errors import PermissionRefused
from members.models import Member
from recognition.models import RecognitionJob, UnknownCluster, UnknownFace
from recognition.services import job_create, job_run
from recognition.unknowns import cluster_assign
from tests.fakes import draw_photo, face_photo

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fake_threshold", "fake_engine", "eager_celery")]

# Red, green and blue are far apart for the fake embedder (cosine < 0.55): three strangers.
RED, GREEN = ("red", (10, 10, 40, 50)), ("green", (90, 20, 40, 50))


def _api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=user, name='t')[1]}")
    return client


def _user(name: str, *perms: str, **extra):
    user = get_user_model().objects.create_user(name, password=f"pw-{name}-123", **extra)
    if perms:
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label="members", codename__in=perms))
    return user


def _cluster_at(x: float) -> UnknownCluster:
    """The cluster of the stranger drawn at ``x`` (the red one at 10, the green one at 90)."""
    return next(c for c in UnknownCluster.objects.all() if c.faces.first().box[0] == x)


def _run(user, faces, capture) -> int:
    with capture(execute=True):
        job = job_create(user=user, upload=SimpleUploadedFile("p.png", draw_photo(faces), content_type="image/png"))
    return job.pk


@pytest.fixture
def manager():
    return _user("manager", "view_member", "add_member", "change_member")


@pytest.fixture
def two_strangers(manager, django_capture_on_commit_callbacks):
    """Three photos with the red and the green stranger: two clusters of three."""
    jobs = [_run(manager, [RED, GREEN], django_capture_on_commit_callbacks) for _ in range(3)]
    return jobs


def test_unknown_faces_are_kept_and_clustered_once(two_strangers, manager, django_capture_on_commit_callbacks):
    assert UnknownFace.objects.count() == 6
    face = UnknownFace.objects.first()
    assert face.model_name and face.dim == len(bytes(face.vector)) // 4 and face.crop.name
    clusters = list(UnknownCluster.objects.order_by("id"))
    assert [c.size for c in clusters] == [3, 3]
    assert all(c.representative_id for c in clusters)
    # A second delivery of a finished job stores nothing new.
    with django_capture_on_commit_callbacks(execute=True):
        assert job_run(job_id=two_strangers[0]).state == "finished"
    assert UnknownFace.objects.count() == 6


def test_list_shape(two_strangers, manager):
    response = _api(manager).get("/api/v1/unknown-clusters")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [c["size"] for c in results] == [3, 3]
    cluster = results[0]
    assert {"id", "size", "faces", "representative"} <= set(cluster)
    assert {f["job_id"] for f in cluster["faces"]} == set(two_strangers)
    assert all(set(f) >= {"job_id", "face_index", "box"} and len(f["box"]) == 4 for f in cluster["faces"])
    assert cluster["representative"]["id"] in {f["id"] for f in cluster["faces"]}


def test_permissions(two_strangers, client):
    cluster = UnknownCluster.objects.first()
    assert APIClient().get("/api/v1/unknown-clusters").status_code == 401
    assert _api(_user("reader")).get("/api/v1/unknown-clusters").status_code == 403
    viewer = _api(_user("viewer", "view_member"))
    assert viewer.get("/api/v1/unknown-clusters").status_code == 200
    response = viewer.post(f"/api/v1/unknown-clusters/{cluster.pk}/dismiss", {}, format="json")
    assert response.status_code == 403
    # Adding to an existing member is a change; a new member needs add_member too.
    changer = _api(_user("changer", "view_member", "change_member"))
    response = changer.post(f"/api/v1/unknown-clusters/{cluster.pk}/assign", {"display_name": "X"}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    assert UnknownCluster.objects.filter(pk=cluster.pk).exists()
    # The pages: a 404 for users without the permissions, the page for staff.
    client.force_login(_user("alice"))
    assert client.get(reverse("unknown-list")).status_code == 404
    face = UnknownFace.objects.first()
    assert client.get(reverse("unknown-face-crop", args=[face.pk])).status_code == 404
    client.force_login(_user("boss", is_staff=True))
    page = client.get(reverse("unknown-list"))
    assert page.status_code == 200 and "3 faces" in page.content.decode()
    crop = client.get(reverse("unknown-face-crop", args=[face.pk]))
    assert crop.status_code == 200 and b"".join(crop.streaming_content)[:2] == b"\xff\xd8"


def test_split_merge_and_dismiss(two_strangers, manager):
    api = _api(manager)
    first, second = UnknownCluster.objects.order_by("id")
    face = first.faces.order_by("id").last()
    response = api.post(f"/api/v1/unknown-clusters/{first.pk}/split", {"face_id": face.pk}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["cluster"]["size"] == 2 and body["new_cluster"]["size"] == 1
    assert [f["id"] for f in body["new_cluster"]["faces"]] == [face.pk]
    response = api.post(f"/api/v1/unknown-clusters/{first.pk}/merge", {"other_id": second.pk}, format="json")
    assert response.status_code == 200 and response.json()["size"] == 5
    assert not UnknownCluster.objects.filter(pk=second.pk).exists()
    assert (
        api.post(f"/api/v1/unknown-clusters/{second.pk}/merge", {"other_id": first.pk}, format="json").status_code
        == 404
    )
    response = api.post(f"/api/v1/unknown-clusters/{first.pk}/dismiss", {}, format="json")
    assert response.status_code == 200 and response.json()["dismissed"] is True
    listed = api.get("/api/v1/unknown-clusters").json()["results"]
    assert [c["size"] for c in listed] == [1]
    assert [c["id"] for c in api.get("/api/v1/unknown-clusters?dismissed=true").json()["results"]] == [first.pk]


def test_a_dismissed_stranger_seen_again_joins_the_dismissed_cluster(
    two_strangers, manager, django_capture_on_commit_callbacks
):
    red = _cluster_at(10.0)
    _api(manager).post(f"/api/v1/unknown-clusters/{red.pk}/dismiss", {}, format="json")
    _run(manager, [("red", (20, 20, 50, 60))], django_capture_on_commit_callbacks)
    red.refresh_from_db()
    assert red.size == 4 and red.dismissed
    assert UnknownCluster.objects.count() == 2


def test_assign_to_an_existing_member_and_appearances(two_strangers, manager, django_capture_on_commit_callbacks):
    api = _api(manager)
    cluster = _cluster_at(90.0)  # the green stranger
    member = member_services.member_create(display_name="Known One").member
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/unknown-clusters/{cluster.pk}/assign", {"member_id": member.pk}, format="json")
    assert response.status_code == 200
    assert response.json() == {"member_id": member.pk, "display_name": "Known One", "created": False, "faces_sent": 3}
    assert member.faces.count() == 3
    assert not UnknownCluster.objects.filter(pk=cluster.pk).exists()
    assert UnknownFace.objects.count() == 3
    assert (
        api.post("/api/v1/unknown-clusters/999999/assign", {"member_id": member.pk}, format="json").status_code == 404
    )
    # Seen again, the face is that member's now: an appearance, not an unknown face.
    job_id = _run(manager, [("green", (30, 30, 50, 60))], django_capture_on_commit_callbacks)
    response = api.get(f"/api/v1/members/{member.pk}/appearances")
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0]["job_id"] == job_id and results[0]["face_index"] == 0
    assert set(results[0]) == {
        "job_id",
        "video_id",
        "face_index",
        "similarity",
        "start_s",
        "end_s",
        "created_at",
        "original_name",
    }
    assert results[0]["video_id"] is None and results[0]["start_s"] is None
    assert UnknownFace.objects.count() == 3
    assert _api(_user("nobody")).get(f"/api/v1/members/{member.pk}/appearances").status_code == 403
    assert api.get("/api/v1/members/999999/appearances").status_code == 404


def test_bad_input_is_a_clear_error(two_strangers, manager):
    api = _api(manager)
    cluster = UnknownCluster.objects.first()
    for body in ({}, {"member_id": 1, "display_name": "x"}):
        response = api.post(f"/api/v1/unknown-clusters/{cluster.pk}/assign", body, format="json")
        assert response.status_code == 400, body
    response = api.post(f"/api/v1/unknown-clusters/{cluster.pk}/merge", {"other_id": cluster.pk}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_input"
    response = api.post(f"/api/v1/unknown-clusters/{cluster.pk}/split", {"face_id": 999999}, format="json")
    assert response.status_code == 400


def test_the_member_page_shows_appearances(client, manager, django_capture_on_commit_callbacks):
    member = member_services.member_create(display_name="Red Person", photos=[face_photo("red")]).member
    job_id = _run(manager, [RED], django_capture_on_commit_callbacks)
    client.force_login(_user("boss", is_staff=True))
    page = client.get(reverse("member-detail", args=[member.pk])).content.decode()
    assert "Where Red Person appears" in page and f"#{job_id}" in page


def test_the_page_forms_name_and_dismiss(two_strangers, client, django_capture_on_commit_callbacks):
    client.force_login(_user("boss", is_staff=True))
    green, red = _cluster_at(90.0), _cluster_at(10.0)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("unknown-action"),
            {"cluster": green.pk, "action": "assign", "display_name": "Green Person"},
            follow=True,
        )
    assert "being added to Green Person" in response.content.decode()
    assert Member.objects.get(display_name="Green Person").faces.count() == 3
    client.post(reverse("unknown-action"), {"cluster": red.pk, "action": "dismiss"})
    red.refresh_from_db()
    assert red.dismissed
    page = client.get(reverse("unknown-list")).content.decode()
    assert "No unknown people" in page
    # The service refuses a user without the permissions, whatever the front door.
    with pytest.raises(PermissionRefused):
        cluster_assign(cluster=red, display_name="X", actor=_user("nobody"))


def test_a_job_whose_unknown_faces_cannot_be_stored_still_finishes(
    manager, monkeypatch, django_capture_on_commit_callbacks
):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("recognition.unknowns._crop_jpeg", disk_full)
    job_id = _run(manager, [RED], django_capture_on_commit_callbacks)
    job = RecognitionJob.objects.get(pk=job_id)
    assert job.status == "done" and len(job.result["faces"]) == 1
    assert not UnknownFace.objects.exists()
