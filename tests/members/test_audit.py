"""The audit log of member changes: every service writes one entry with its actor, in the
change's own transaction; the API, the admin and the pages pass the user; the admin is read-only."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.services import token_create
from members import selectors, services
from members.errors import DuplicateExternalId
from members.models import AuditEntry, FaceSample, Member
from tests.fakes import FAKE_MODEL, face_photo

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor():
    return get_user_model().objects.create_user("editor", password="pw-editor-123")


def only_entry(**filters) -> AuditEntry:
    (entry,) = AuditEntry.objects.filter(**filters)
    return entry


def test_each_service_writes_one_entry_with_its_actor(fake_engine, editor, django_capture_on_commit_callbacks):
    member = services.member_create(
        display_name="Ada", external_id="A-1", photos=[face_photo("red")], actor=editor
    ).member
    entry = only_entry(action="create")
    assert (entry.actor, entry.actor_repr, entry.member_id, entry.member_name) == (editor, "editor", member.pk, "Ada")
    assert entry.changes["external_id"] == "A-1" and len(entry.changes["face_ids"]) == 1

    services.member_update(member=member, display_name="Ada L.", notes="n", actor=editor)
    entry = only_entry(action="update")
    assert entry.actor == editor and entry.changes == {"display_name": ["Ada", "Ada L."], "notes": ["", "n"]}

    result = services.member_add_faces(member=member, photos=[face_photo("red", box=(30, 30, 50, 60))], actor=editor)
    entry = only_entry(action="add_faces")
    assert entry.actor == editor and entry.changes["face_ids"] == [result.outcomes[0].face_id]
    assert entry.changes["mode"] == "average" and entry.changes["model_name"] == FAKE_MODEL

    with django_capture_on_commit_callbacks(execute=True):
        services.face_delete(faces=[result.outcomes[0].face_id], actor=editor)
    entry = only_entry(action="delete_faces")
    assert entry.actor == editor and entry.changes == {"face_ids": [result.outcomes[0].face_id]}

    services.member_recompute_embeddings(member=member, actor=editor)
    entry = only_entry(action="recompute")
    assert entry.actor == editor and entry.changes["embedded"] == 1

    with django_capture_on_commit_callbacks(execute=True):
        services.member_delete(member=member, actor=editor)
    entry = only_entry(action="delete")
    assert (entry.actor, entry.member_id, entry.member_name) == (editor, member.pk, "Ada L.")
    assert entry.changes == {"display_name": "Ada L.", "external_id": "A-1", "faces": 1}
    # The log outlives the member; the selector lists its entries, newest first.
    actions = [e.action for e in selectors.audit_entries_for_member(member_id=member.pk)]
    assert actions == ["delete", "recompute", "delete_faces", "add_faces", "update", "create"]


def test_no_actor_is_the_system_and_a_deleted_user_keeps_the_name(fake_engine, editor):
    member = services.member_create(display_name="Bob").member
    assert only_entry(action="create").actor_repr == "system"
    services.member_update(member=member, is_active=False, actor=editor)
    editor.delete()
    entry = only_entry(action="update")
    assert entry.actor is None and entry.actor_repr == "editor" and entry.changes == {"is_active": [True, False]}


def test_a_refused_change_writes_no_entry_and_a_no_op_update_neither(fake_engine, editor):
    services.member_create(display_name="Ada", external_id="A-1")
    bob = services.member_create(display_name="Bob").member
    count = AuditEntry.objects.count()
    with pytest.raises(DuplicateExternalId):
        services.member_update(member=bob, external_id="A-1", actor=editor)
    services.member_update(member=bob, display_name="Bob", actor=editor)  # nothing really changed
    assert AuditEntry.objects.count() == count


def test_api_changes_record_the_token_user(fake_engine, editor, django_capture_on_commit_callbacks):
    editor.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="members",
            codename__in=["add_member", "change_member", "delete_member", "view_member"],
        )
    )
    _, token = token_create(user=editor, name="test")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    created = api.post(
        "/api/v1/members",
        {"display_name": "Ada", "photos": [SimpleUploadedFile("a.png", face_photo("red"))]},
        format="multipart",
    )
    assert created.status_code == 201, created.content
    member_id = created.json()["member"]["id"]
    patched = api.patch(f"/api/v1/members/{member_id}", {"notes": "x"}, format="json", HTTP_X_REQUEST_ID="audit-req-42")
    assert patched.status_code == 200
    added = api.post(
        f"/api/v1/members/{member_id}/faces",
        {"photos": [SimpleUploadedFile("b.png", face_photo("red"))], "mode": "average"},
        format="multipart",
    )
    assert added.status_code == 201, added.content
    face_id = added.json()["enrolment"]["photos"][0]["face_id"]
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/api/v1/members/{member_id}/faces/{face_id}").status_code == 204
        assert api.delete(f"/api/v1/members/{member_id}").status_code == 204
    entries = list(AuditEntry.objects.filter(member_id=member_id).order_by("id"))
    assert [e.action for e in entries] == ["create", "update", "add_faces", "delete_faces", "delete"]
    assert all(e.actor == editor for e in entries)
    # Each entry names the request that made it (the X-Request-ID the caller sent, or a new one).
    assert entries[1].request_id == "audit-req-42" == patched["X-Request-ID"]
    assert entries[0].request_id and entries[0].request_id == created["X-Request-ID"]


def test_admin_changes_record_the_user_and_the_log_is_read_only(
    admin_client, admin_user, fake_engine, eager_celery, django_capture_on_commit_callbacks
):
    from .test_admin import form_data, upload

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:members_member_add"),
            form_data(display_name="Grace", external_id="G-1", photos=[upload("g.png", face_photo("green"))]),
        )
    assert response.status_code == 302
    member = Member.objects.get(external_id="G-1")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:members_member_change", args=[member.pk]), form_data(member, display_name="Grace H.")
        )
    assert response.status_code == 302
    page = admin_client.get(reverse("admin:members_member_change", args=[member.pk])).content.decode()
    assert "<td>admin</td><td>update</td>" in page  # the member's own page shows its latest changes
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:members_member_changelist"),
            {"action": "recompute_embeddings", "_selected_action": [member.pk]},
        )
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:members_member_delete", args=[member.pk]), {"post": "yes"})
    assert response.status_code == 302 and not Member.objects.filter(pk=member.pk).exists()
    entries = list(AuditEntry.objects.filter(member_id=member.pk).order_by("id"))
    # The photo was embedded by the worker task, still in the uploader's name.
    assert [e.action for e in entries] == ["create", "add_faces", "update", "recompute", "delete"]
    assert all(e.actor == admin_user for e in entries)

    entry = entries[0]
    listing = admin_client.get(reverse("admin:members_auditentry_changelist"))
    assert listing.status_code == 200 and "Grace H." in listing.content.decode()
    page = admin_client.get(reverse("admin:members_auditentry_change", args=[entry.pk]))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert admin_client.get(reverse("admin:members_auditentry_add")).status_code == 403
    assert (
        admin_client.post(reverse("admin:members_auditentry_change", args=[entry.pk]), {"action": "delete"}).status_code
        == 403
    )
    assert (
        admin_client.post(reverse("admin:members_auditentry_delete", args=[entry.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert AuditEntry.objects.filter(pk=entry.pk, action="create").exists()


def test_enrolment_page_records_the_staff_user(client, fake_engine, eager_celery, django_capture_on_commit_callbacks):
    staff = get_user_model().objects.create_user("boss", password="pw-boss-123", is_staff=True)
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("member-enrol"),
            {"display_name": "Green", "mode": "average", "photos": [SimpleUploadedFile("g.png", face_photo("green"))]},
        )
    member = Member.objects.get(display_name="Green")
    assert FaceSample.objects.filter(member=member).count() == 1
    assert [(e.action, e.actor) for e in AuditEntry.objects.filter(member_id=member.pk).order_by("id")] == [
        ("create", staff),
        ("add_faces", staff),
    ]
