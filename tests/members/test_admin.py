"""The admin: lists with thumbnails and counts, uploads through the services and Celery,
deletions and actions routed through the services."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from members import services
from members.models import Embedding, FaceSample, Member, PhotoUpload, Template
from tests.fakes import FAKE_MODEL, draw_photo, face_photo, stored_files

pytestmark = pytest.mark.django_db

INLINES = ("faces", "templates", "uploads")


def form_data(member: Member | None = None, **overrides) -> dict:
    data = {
        "display_name": member.display_name if member else "",
        "external_id": (member.external_id or "") if member else "",
        "notes": member.notes if member else "",
        "is_active": "on",
        "photo_mode": "average",
    }
    for prefix in INLINES:
        count = 0
        if member is not None and prefix == "faces":
            count = member.faces.count()
        elif member is not None and prefix == "templates":
            count = member.templates.count()
        elif member is not None and prefix == "uploads":
            count = member.uploads.count()
        data.update(
            {
                f"{prefix}-TOTAL_FORMS": str(count),
                f"{prefix}-INITIAL_FORMS": str(count),
                f"{prefix}-MIN_NUM_FORMS": "0",
                f"{prefix}-MAX_NUM_FORMS": "1000",
            }
        )
    if member is not None:
        for i, face in enumerate(member.faces.order_by("id")):
            data[f"faces-{i}-id"] = str(face.pk)
            data[f"faces-{i}-member"] = str(member.pk)
        for i, template in enumerate(member.templates.order_by("id")):
            data[f"templates-{i}-id"] = str(template.pk)
            data[f"templates-{i}-member"] = str(member.pk)
        for i, upload in enumerate(member.uploads.order_by("-created_at", "-id")):
            data[f"uploads-{i}-id"] = str(upload.pk)
            data[f"uploads-{i}-member"] = str(member.pk)
    data.update(overrides)
    return data


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="image/png")


def test_member_list_has_thumbnails_face_counts_search_and_filters(admin_client, fake_engine):
    ada = services.member_create(display_name="Ada", photos=[face_photo("red"), face_photo("blue")]).member
    services.member_create(display_name="Bob", external_id="B-7")
    services.member_update(member=services.member_create(display_name="Cy").member, is_active=False)
    url = reverse("admin:members_member_changelist")
    page = admin_client.get(url).content.decode()
    face = FaceSample.objects.filter(member=ada).order_by("id").first()
    assert f"url('{reverse('member-face-photo', args=[face.pk])}')" in page  # the face cut out by CSS
    assert "Ada" in page and "Bob" in page and "Cy" in page
    assert '<td class="field-face_count">2</td>' in page
    assert "Bob" not in admin_client.get(url, {"q": "ada"}).content.decode()
    assert "Ada" not in admin_client.get(url, {"q": "B-7"}).content.decode()
    inactive = admin_client.get(url, {"is_active__exact": "0"}).content.decode()
    assert "Cy" in inactive and "Ada" not in inactive
    with_faces = admin_client.get(url, {"has_faces": "yes"}).content.decode()
    assert "Ada" in with_faces and "Bob" not in with_faces


def test_member_page_shows_faces_with_their_box_and_templates(admin_client, fake_engine):
    member = services.member_create(display_name="Ada", photos=[face_photo("red", box=(40, 20, 60, 70))]).member
    page = admin_client.get(reverse("admin:members_member_change", args=[member.pk])).content.decode()
    face = member.faces.get()
    assert reverse("member-face-photo", args=[face.pk]) in page  # the permission-checked view, not MEDIA_URL
    # 160x120 photo scaled to 120 px wide (0.75): the box at 30, 15, 45 x 52.5
    assert "left:30.0px;top:15.0px;width:45.0px;height:52.5px" in page
    assert FAKE_MODEL in page  # the template inline
    faces_page = admin_client.get(reverse("admin:members_facesample_changelist")).content.decode()
    assert reverse("member-face-photo", args=[face.pk]) in faces_page and "Ada" in faces_page


def test_adding_a_member_with_photos_runs_the_services_through_celery(
    admin_client, fake_engine, eager_celery, media_root, django_capture_on_commit_callbacks
):
    photos = [
        upload("../../a.png", face_photo("red")),
        upload("b.png", face_photo("blue")),
        upload("empty.png", draw_photo([])),
        upload("c.txt", b"not an image"),
    ]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(
            reverse("admin:members_member_add"), form_data(display_name="Grace", external_id="G-1", photos=photos)
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert len(callbacks) == 1  # the task was queued after the commit, not before
    member = Member.objects.get(external_id="G-1")
    assert member.display_name == "Grace"
    assert member.faces.count() == 2
    assert Template.objects.get(member=member).count == 2
    uploads = {u.original_name: u for u in PhotoUpload.objects.filter(member=member)}
    assert uploads["a.png"].status == "done" and uploads["a.png"].face_id is not None
    assert (uploads["empty.png"].status, uploads["empty.png"].code) == ("failed", "no_face")
    assert (uploads["c.txt"].status, uploads["c.txt"].code) == ("failed", "unsupported_image_type")
    # Staged uploads are gone; only the two face photos remain, under generated names.
    assert sorted(p.relative_to(media_root).as_posix() for p in stored_files(media_root)) == sorted(
        f.photo.name for f in member.faces.all()
    )
    page = admin_client.get(reverse("admin:members_member_change", args=[member.pk])).content.decode()
    assert "no_face" in page  # the outcome is shown on the member's page


def test_a_redelivered_upload_task_does_nothing_twice(fake_engine, eager_celery, django_capture_on_commit_callbacks):
    from members.tasks import process_uploads_task

    member = services.member_create(display_name="M").member
    with django_capture_on_commit_callbacks(execute=True):
        uploads = services.member_upload_photos(member=member, files=[upload("a.png", face_photo("red"))])
    assert member.faces.count() == 1
    assert process_uploads_task.delay([u.pk for u in uploads]).get() == {"claimed": 0, "added": 0, "failed": 0}
    assert member.faces.count() == 1


def test_changing_a_member_adds_or_replaces_photos(
    admin_client, fake_engine, eager_celery, django_capture_on_commit_callbacks
):
    member = services.member_create(display_name="Ada", photos=[face_photo("red")]).member
    url = reverse("admin:members_member_change", args=[member.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            url, form_data(member, display_name="Ada L.", photos=[upload("x.png", face_photo("blue"))])
        )
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.display_name == "Ada L." and Template.objects.get(member=member).count == 2
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url, form_data(member, photo_mode="replace", photos=[upload("y.png", face_photo("green"))]))
    assert Template.objects.get(member=member).count == 1 and member.faces.count() == 1


def test_deleting_a_face_inline_recomputes_the_template(
    admin_client, fake_engine, media_root, django_capture_on_commit_callbacks
):
    member = services.member_create(display_name="Ada", photos=[face_photo("red"), face_photo("blue")]).member
    first = member.faces.order_by("id").first()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:members_member_change", args=[member.pk]), form_data(member, **{"faces-0-DELETE": "on"})
        )
    assert response.status_code == 302
    assert list(member.faces.values_list("id", flat=True)) != [] and not FaceSample.objects.filter(pk=first.pk).exists()
    assert Template.objects.get(member=member).count == 1
    assert not (media_root / first.photo.name).exists()


def test_deleting_members_in_the_admin_uses_member_delete(
    admin_client, fake_engine, media_root, django_capture_on_commit_callbacks
):
    a = services.member_create(display_name="A", photos=[face_photo("red")]).member
    b = services.member_create(display_name="B", photos=[face_photo("blue")]).member
    keep = services.member_create(display_name="Keep", photos=[face_photo("green")]).member
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:members_member_changelist"),
            {"action": "delete_selected", "_selected_action": [a.pk, b.pk], "post": "yes"},
        )
    assert response.status_code == 302
    assert list(Member.objects.values_list("pk", flat=True)) == [keep.pk]
    assert len(stored_files(media_root)) == 1 and Embedding.objects.count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:members_member_delete", args=[keep.pk]), {"post": "yes"})
    assert not Member.objects.exists() and stored_files(media_root) == []


def test_actions_recompute_embeddings_and_delete_faces(
    admin_client, fake_engine, eager_celery, media_root, django_capture_on_commit_callbacks
):
    member = services.member_create(display_name="A", photos=[face_photo("red"), face_photo("blue")]).member
    Embedding.objects.filter(face__member=member).delete()
    Template.objects.filter(member=member).delete()
    url = reverse("admin:members_member_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url, {"action": "recompute_embeddings", "_selected_action": [member.pk]})
    assert Embedding.objects.filter(face__member=member, model_name=FAKE_MODEL).count() == 2
    assert Template.objects.get(member=member).count == 2
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url, {"action": "delete_faces", "_selected_action": [member.pk]})
    assert Member.objects.filter(pk=member.pk).exists()
    assert not member.faces.exists() and not Template.objects.filter(member=member).exists()
    assert stored_files(media_root) == []


def test_deleting_faces_from_the_face_list(admin_client, fake_engine, django_capture_on_commit_callbacks):
    member = services.member_create(display_name="A", photos=[face_photo("red"), face_photo("blue")]).member
    first = member.faces.order_by("id").first()
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:members_facesample_changelist"),
            {"action": "delete_selected", "_selected_action": [first.pk], "post": "yes"},
        )
    assert member.faces.count() == 1 and Template.objects.get(member=member).count == 1
    assert admin_client.get(reverse("admin:members_facesample_add")).status_code == 403
