"""Members pages: the list with thumbnails, a member with its photos, and enrolment. Enrolment
photos are staged by ``member_upload_photos`` and embedded by the same Celery workers as jobs."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, user_passes_test
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from facesite.files import private_file_response

from . import selectors, services
from .errors import MemberError
from .forms import EnrolForm
from .models import FaceSample, Member

THUMB = 64


def can_view_members(user) -> bool:
    """Members' faces are personal data: staff, or users given members.view_member (the API's
    rule), may see them; any other logged-in user gets 403."""
    return user.is_staff or user.has_perm("members.view_member")


def _require_view(request: HttpRequest) -> None:
    if not can_view_members(request.user):
        raise PermissionDenied("Your account may not see members.")


def face_thumb(face: FaceSample, size: int = THUMB) -> dict:
    """How to show just the face of a photo in a ``size`` square with CSS (no image processing)."""
    side = max(face.box_w, face.box_h, 1.0)
    scale = size / side
    return {
        "face": face,
        "size": size,
        "width": round(face.image_width * scale),
        "height": round(face.image_height * scale),
        "x": -round((face.box_x - (side - face.box_w) / 2) * scale),
        "y": -round((face.box_y - (side - face.box_h) / 2) * scale),
    }


@login_required
def member_list_view(request: HttpRequest) -> HttpResponse:
    _require_view(request)
    search = (request.GET.get("q") or "").strip()
    members = list(selectors.member_list(search=search or None)[:200])
    first: dict[int, FaceSample] = {}
    for face in FaceSample.objects.filter(member__in=members).order_by("member_id", "id"):
        first.setdefault(face.member_id, face)
    rows = [{"member": m, "thumb": face_thumb(first[m.pk]) if m.pk in first else None} for m in members]
    return render(request, "members/member_list.html", {"rows": rows, "search": search})


@login_required
def member_detail(request: HttpRequest, member_id: int) -> HttpResponse:
    _require_view(request)
    try:
        member = selectors.member_get(member_id=member_id)
    except MemberError:
        raise Http404("No such member.") from None
    faces = [face_card(face, 120) for face in selectors.member_faces(member=member)]
    uploads = member.uploads.order_by("-created_at")[:20]
    context = {
        "member": member,
        "faces": faces,
        "uploads": uploads,
        "flagged": sum(1 for f in faces if f["flagged"]),
        "can_confirm": can_confirm_faces(request.user),
    }
    return render(request, "members/member_detail.html", context)


# What each quality warning code means, for people (faceengine.quality has the thresholds).
WARNING_TEXT = {
    "small_face": "small face",
    "blurry": "blurry",
    "turned": "turned away",
    "low_score": "unsure detection",
}


def can_confirm_faces(user) -> bool:
    """Confirming a flagged face changes the gallery: staff with the change permission."""
    return bool(user.is_staff and user.has_perm("members.change_member"))


def face_card(face: FaceSample, size: int) -> dict:
    """A thumbnail plus the face's quality warnings and outlier status, for the templates."""
    card = face_thumb(face, size)
    card["warnings"] = [WARNING_TEXT.get(code, code) for code in face.quality_warnings or []]
    card["flagged"] = face.status == FaceSample.Status.FLAGGED
    card["confirmed"] = face.status == FaceSample.Status.CONFIRMED
    return card


@login_required
@require_POST
def face_confirm(request: HttpRequest, face_id: int) -> HttpResponse:
    """The confirm button of a flagged face: back into the member's template."""
    if not can_confirm_faces(request.user):
        raise PermissionDenied("Your account may not confirm faces.")
    face = FaceSample.objects.filter(pk=face_id).first()
    if face is None:
        raise Http404("No such face.")
    if services.member_face_confirm(faces=[face.pk], actor=request.user):
        messages.success(request, "The face is confirmed and back in the member's template.")
    return redirect("member-detail", face.member_id)


@login_required
def face_photo(request: HttpRequest, face_id: int) -> FileResponse:
    _require_view(request)
    face = FaceSample.objects.filter(pk=face_id).first()
    if face is None:
        raise Http404("No such face.")
    return private_file_response(face.photo)


@login_required
@user_passes_test(lambda user: user.is_staff)
def member_enrol(request: HttpRequest) -> HttpResponse:
    initial = {"member": request.GET.get("member")} if request.GET.get("member") else None
    form = EnrolForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                member: Member = (
                    data["member"]
                    or services.member_create(display_name=data["display_name"], actor=request.user).member
                )
                uploads = services.member_upload_photos(
                    member=member,
                    files=data["photos"],
                    mode=data["mode"] if data["member"] else "average",
                    actor=request.user,
                )
        except MemberError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(
                request,
                f"{len(uploads)} photo(s) of {member.display_name} queued; "
                "they appear below once a worker has embedded them.",
            )
            return redirect("member-detail", member.pk)
    # Adding to a member: its faces so far, with their warnings and flags, beside the form.
    member_id = form["member"].value() if "member" in form.fields else None
    faces = []
    if member_id and str(member_id).isdigit():
        faces = [face_card(face, 64) for face in selectors.member_faces(member=int(member_id))]
    context = {"form": form, "faces": faces, "can_confirm": can_confirm_faces(request.user)}
    return render(request, "members/enrol.html", context)
