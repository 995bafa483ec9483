"""Privacy: deleting a member removes its photos from disk (every face's file and any staged
upload), through the service, the API and the admin; other members' photos and the job photos
(which belong to the users who uploaded them) stay; a rolled-back deletion removes nothing."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from members import services
from members.models import FaceSample, Member, PhotoUpload
from recognition.services import job_create
from tests.fakes import face_photo

from .conftest import api_for, make_user, media_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(fake_engine, media_root):
    ada = services.member_create(
        display_name="Ada", photos=[face_photo("red"), face_photo("red", box=(20, 20, 70, 80))]
    ).member
    bob = services.member_create(display_name="Bob", photos=[face_photo("blue")]).member
    # A staged upload not processed yet (no worker ran): its file must go too.
    services.member_upload_photos(member=ada, files=[SimpleUploadedFile("later.png", face_photo("red"))])
    job = job_create(user=make_user("alice"), upload=face_photo("red"))
    return ada, bob, job


def files_of(member: Member) -> list[str]:
    names = [f.photo.name for f in FaceSample.objects.filter(member=member)]
    names += [u.file.name for u in PhotoUpload.objects.filter(member=member) if u.file]
    return names


def check_deleted(media_root, before: list[str], gone: list[str], bob: Member, job) -> None:
    after = media_files(media_root)
    assert gone and not set(gone) & set(after)
    assert sorted(after) == sorted(set(before) - set(gone))
    assert set(files_of(bob)) <= set(after) and job.photo.name in after


def test_service(people, media_root, django_capture_on_commit_callbacks):
    ada, bob, job = people
    before, gone = media_files(media_root), files_of(ada)
    assert len(gone) == 3
    with django_capture_on_commit_callbacks(execute=True):
        services.member_delete(member=ada)
    check_deleted(media_root, before, gone, bob, job)


def test_api(people, media_root, django_capture_on_commit_callbacks):
    ada, bob, job = people
    before, gone = media_files(media_root), files_of(ada)
    api = api_for(make_user("manager", perms=("delete_member", "view_member")))
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/api/v1/members/{ada.pk}").status_code == 204
    check_deleted(media_root, before, gone, bob, job)


def test_admin_single_and_bulk(people, media_root, admin_client, django_capture_on_commit_callbacks):
    ada, bob, job = people
    before, gone = media_files(media_root), files_of(ada)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:members_member_delete", args=[ada.pk]), {"post": "yes"})
    assert response.status_code == 302
    check_deleted(media_root, before, gone, bob, job)
    before, gone = media_files(media_root), files_of(bob)
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:members_member_changelist"),
            {"action": "delete_selected", "_selected_action": [bob.pk], "post": "yes"},
        )
    assert not Member.objects.exists()
    assert media_files(media_root) == [job.photo.name]


def test_a_rolled_back_deletion_keeps_the_files(people, media_root, django_capture_on_commit_callbacks):
    from django.db import transaction

    ada, _, _ = people
    before = media_files(media_root)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        services.member_delete(member=ada)
        raise RuntimeError("the request failed after the delete")
    assert Member.objects.filter(pk=ada.pk).exists() and media_files(media_root) == before
