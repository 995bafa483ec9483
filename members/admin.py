"""The admin: thin. Every write goes through members.services; uploads are embedded by Celery."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, TypedDict

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, Prefetch, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from . import selectors, services
from .models import AuditEntry, FaceSample, Member, PhotoUpload, Template
from .tasks import recompute_embeddings_task

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    class _FaceCount(TypedDict):
        face_count: int


THUMB = 64
FACE_THUMB = 120
AUDIT_ROWS = 20
MEMBER_FIELDS = ("display_name", "external_id", "notes", "is_active")


# ------------------------------------------------------------------------------- thumbnails


def face_photo_url(face: FaceSample) -> str:
    """The permission-checked photo view: MEDIA_URL is never served (photos are private)."""
    return reverse("member-face-photo", args=[face.pk])


def face_crop(face: FaceSample, size: int = THUMB) -> str:
    """The face cut out of its photo by CSS (no image processing on the server)."""
    scale = size / max(face.box_w, face.box_h, 1.0)
    return format_html(
        '<span title="{}" style="display:inline-block;width:{}px;height:{}px;border-radius:4px;'
        "background:url('{}') no-repeat;background-size:{}px {}px;background-position:{}px {}px\">"
        "</span>",
        str(face.member_id),
        size,
        size,
        face_photo_url(face),
        round(face.image_width * scale, 1),
        round(face.image_height * scale, 1),
        round(-face.box_x * scale + (size - face.box_w * scale) / 2, 1),
        round(-face.box_y * scale + (size - face.box_h * scale) / 2, 1),
    )


def face_with_box(face: FaceSample, size: int = FACE_THUMB) -> str:
    """The whole photo, scaled, with the detected face's box drawn over it."""
    scale = size / max(face.image_width, face.image_height, 1)
    width, height = round(face.image_width * scale), round(face.image_height * scale)
    return format_html(
        '<span style="position:relative;display:inline-block;width:{}px;height:{}px">'
        '<img src="{}" alt="face {}" style="width:{}px;height:{}px;display:block">'
        '<span style="position:absolute;left:{}px;top:{}px;width:{}px;height:{}px;'
        'border:2px solid #2ecc40;box-sizing:border-box"></span></span>',
        width,
        height,
        face_photo_url(face),
        face.pk,
        width,
        height,
        round(face.box_x * scale, 1),
        round(face.box_y * scale, 1),
        round(face.box_w * scale, 1),
        round(face.box_h * scale, 1),
    )


# ------------------------------------------------------------------------------- forms


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        files = data if isinstance(data, (list, tuple)) else ([data] if data else [])
        cleaned = [single(item, initial) for item in files]
        for item in cleaned:
            if item.size > settings.FACESITE_MAX_UPLOAD_BYTES:
                raise forms.ValidationError(
                    f"{item.name} is {item.size} bytes; the limit is {settings.FACESITE_MAX_UPLOAD_BYTES}."
                )
        return cleaned


class MemberAdminForm(forms.ModelForm):
    photos = MultipleFileField(
        required=False,
        help_text="Enrolment photos: one face each (the largest is used). They are processed in "
        "the background; the outcome of each appears under Uploads.",
    )
    photo_mode = forms.ChoiceField(
        choices=[("average", "Add to the member's faces"), ("replace", "Replace all the member's faces")],
        initial="average",
        required=False,
        label="Photos",
    )

    class Meta:
        model = Member
        fields = list(MEMBER_FIELDS)

    def clean_external_id(self) -> str | None:
        # The services' rule (case-insensitive), shown on the form rather than as a 500.
        external_id = (self.cleaned_data.get("external_id") or "").strip() or None
        if external_id and services.external_id_taken(external_id, exclude_id=self.instance.pk):
            raise forms.ValidationError("A member with this external id already exists.")
        return external_id


# ------------------------------------------------------------------------------- inlines


class FaceSampleInline(admin.TabularInline):
    model = FaceSample
    extra = 0
    can_delete = True
    fields = ("preview", "detection_score", "quality", "status", "outlier_similarity", "detection", "created_at")
    readonly_fields = fields
    ordering = ("id",)

    @admin.display(description="quality")
    def quality(self, face: FaceSample) -> str:
        return quality_summary(face)

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # photos are added through the upload field, i.e. the services

    @admin.display(description="face")
    def preview(self, face: FaceSample) -> str:
        return face_with_box(face)


class TemplateInline(admin.TabularInline):
    model = Template
    extra = 0
    can_delete = False
    fields = ("model_name", "dim", "count", "updated_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class PhotoUploadInline(admin.TabularInline):
    model = PhotoUpload
    extra = 0
    can_delete = False
    verbose_name_plural = "Uploads"
    fields = ("original_name", "mode", "status", "code", "message", "created_at", "finished_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class HasFacesFilter(admin.SimpleListFilter):
    title = "faces"
    parameter_name = "has_faces"

    def lookups(self, request, model_admin):
        return [("yes", "With faces"), ("no", "Without faces")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(face_count__gt=0)
        if self.value() == "no":
            return queryset.filter(face_count=0)
        return queryset


# ------------------------------------------------------------------------------- members


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    form = MemberAdminForm
    list_display = ("thumbnail", "display_name", "external_id", "is_active", "face_count", "created_at")
    list_display_links = ("thumbnail", "display_name")
    list_filter = ("is_active", HasFacesFilter, ("templates__model_name", admin.AllValuesFieldListFilter), "created_at")
    search_fields = ("display_name", "external_id", "notes")
    readonly_fields = ("created_at", "updated_at", "audit_log")
    fieldsets = [
        (None, {"fields": MEMBER_FIELDS}),
        ("Add photos", {"fields": ("photos", "photo_mode")}),
        ("Dates", {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
        ("Audit log", {"fields": ("audit_log",), "classes": ("collapse",)}),
    ]
    inlines = [FaceSampleInline, TemplateInline, PhotoUploadInline]
    actions = ["recompute_embeddings", "delete_faces"]
    list_per_page = 50

    def get_queryset(self, request: HttpRequest) -> QuerySet[Member]:
        return (
            super()
            .get_queryset(request)
            .annotate(face_count=Count("faces", distinct=True))
            .prefetch_related(Prefetch("faces", queryset=FaceSample.objects.order_by("id"), to_attr="ordered_faces"))
        )

    @admin.display(description="")
    def thumbnail(self, member: Member) -> str:
        faces = getattr(member, "ordered_faces", None)
        if faces is None:
            faces = list(member.faces.order_by("id")[:1])
        return face_crop(faces[0]) if faces else "—"

    @admin.display(description="latest changes")
    def audit_log(self, member: Member) -> str:
        if member.pk is None:
            return "—"
        entries = selectors.audit_entries_for_member(member_id=member.pk)[:AUDIT_ROWS]
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((e.created_at.strftime("%Y-%m-%d %H:%M:%S"), e.actor_repr, e.action) for e in entries),
        )
        return format_html("<table><tbody>{}</tbody></table>", rows) if rows else "—"

    @admin.display(description="faces", ordering="face_count")
    def face_count(self, member: WithAnnotations[Member, _FaceCount]) -> int:
        return member.face_count

    # Writes go through the services ---------------------------------------------------------

    def save_model(self, request, obj: Member, form, change: bool) -> None:
        data = {name: form.cleaned_data.get(name) for name in MEMBER_FIELDS}
        if change:
            changed = {name: data[name] for name in MEMBER_FIELDS if name in form.changed_data}
            if changed:
                services.member_update(member=obj.pk, actor=request.user, **changed)
            return
        created = services.member_create(actor=request.user, **data).member
        # The admin goes on with ``obj`` (log entry, redirect): make it the created row.
        obj.pk, obj.created_at, obj.updated_at = created.pk, created.created_at, created.updated_at
        obj._state.adding, obj._state.db = False, created._state.db

    def save_formset(self, request, form, formset, change: bool) -> None:
        if formset.model is FaceSample:
            formset.save(commit=False)
            if formset.deleted_objects:
                count = services.face_delete(faces=formset.deleted_objects, actor=request.user)
                self.message_user(request, f"{count} face(s) deleted; the template was recomputed.")
            return
        super().save_formset(request, form, formset, change)

    def save_related(self, request, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        photos = form.cleaned_data.get("photos") or []
        if photos:
            mode = form.cleaned_data.get("photo_mode") or "average"
            services.member_upload_photos(member=form.instance.pk, files=photos, mode=mode, actor=request.user)
            self.message_user(
                request, f"{len(photos)} photo(s) queued for face detection; the outcome of each appears under Uploads."
            )

    def delete_model(self, request, obj: Member) -> None:
        services.member_delete(member=obj.pk, actor=request.user)

    def delete_queryset(self, request, queryset: QuerySet[Member]) -> None:
        for member_id in queryset.values_list("pk", flat=True):
            services.member_delete(member=member_id, actor=request.user)

    @admin.action(description="Recompute embeddings with the active model")
    def recompute_embeddings(self, request, queryset: QuerySet[Member]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        actor_id = request.user.pk
        for member_id in ids:
            transaction.on_commit(partial(recompute_embeddings_task.delay, member_id, actor_id=actor_id))
        self.message_user(request, f"Embeddings of {len(ids)} member(s) queued for recomputation.")

    @admin.action(description="Delete all faces of the selected members")
    def delete_faces(self, request, queryset: QuerySet[Member]) -> None:
        face_ids = FaceSample.objects.filter(member__in=queryset).values_list("pk", flat=True)
        count = services.face_delete(faces=list(face_ids), actor=request.user)
        self.message_user(request, f"{count} face(s) deleted.", messages.SUCCESS)


# ------------------------------------------------------------------------------- faces


def quality_summary(face: FaceSample) -> str:
    """The quality record in one line: warnings first, then the measures ("-" when unknown)."""
    if face.sharpness is None:
        return "-"
    warnings = ", ".join(face.quality_warnings or []) or "ok"
    return (
        f"{warnings} · eyes {face.eye_distance or 0:.0f}px · sharpness {face.sharpness:.0f} · "
        f"yaw {face.yaw or 0:.0f}° pitch {face.pitch or 0:.0f}°"
    )


@admin.register(FaceSample)
class FaceSampleAdmin(admin.ModelAdmin):
    list_display = (
        "preview",
        "member",
        "status",
        "outlier_similarity",
        "quality",
        "detection_score",
        "detection",
        "models",
        "created_at",
    )
    list_select_related = ("member",)
    list_filter = (
        "status",
        "detection",
        ("embeddings__model_name", admin.AllValuesFieldListFilter),
        "created_at",
    )
    actions = ["confirm_faces"]
    search_fields = ("member__display_name", "member__external_id")
    readonly_fields = (
        "preview",
        "member",
        "image_width",
        "image_height",
        "box_x",
        "box_y",
        "box_w",
        "box_h",
        "landmarks",
        "detection_score",
        "detection",
        "eye_distance",
        "sharpness",
        "yaw",
        "pitch",
        "roll",
        "quality_warnings",
        "status",
        "outlier_similarity",
        "outlier_model",
        "created_at",
    )
    exclude = ("photo",)
    list_per_page = 50

    def get_queryset(self, request: HttpRequest) -> QuerySet[FaceSample]:
        return super().get_queryset(request).prefetch_related("embeddings")

    def has_add_permission(self, request) -> bool:
        return False  # faces come from a member's photos, through the services

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # view and delete only

    @admin.display(description="face")
    def preview(self, face: FaceSample) -> str:
        return face_with_box(face)

    @admin.display(description="models")
    def models(self, face: FaceSample) -> str:
        return format_html_join(", ", "{} ({}-d)", ((e.model_name, e.dim) for e in face.embeddings.all()))

    @admin.display(description="quality")
    def quality(self, face: FaceSample) -> str:
        return quality_summary(face)

    def has_confirm_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("members.change_member")

    @admin.action(description="Confirm the selected flagged faces (back into the template)", permissions=["confirm"])
    def confirm_faces(self, request, queryset: QuerySet[FaceSample]) -> None:
        count = services.member_face_confirm(faces=list(queryset.values_list("pk", flat=True)), actor=request.user)
        self.message_user(request, f"{count} flagged face(s) confirmed.", messages.SUCCESS)

    def delete_model(self, request, obj: FaceSample) -> None:
        services.face_delete(faces=[obj.pk], actor=request.user)

    def delete_queryset(self, request, queryset: QuerySet[FaceSample]) -> None:
        services.face_delete(faces=list(queryset.values_list("pk", flat=True)), actor=request.user)


# ------------------------------------------------------------------------------- audit log


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: entries are written by members.services only, never edited or removed here."""

    list_display = ("created_at", "actor_repr", "action", "member_id", "member_name")
    list_filter = ("action", "created_at")
    search_fields = ("member_name", "actor_repr", "=member_id")
    readonly_fields = (
        "created_at",
        "actor",
        "actor_repr",
        "action",
        "member_id",
        "member_name",
        "changes",
        "request_id",
    )
    fields = readonly_fields
    list_select_related = ("actor",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
