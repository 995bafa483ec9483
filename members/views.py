"""Members pages: the list with thumbnails, a member with its photos, and enrolment. Enrolment
photos are staged by ``member_upload_photos`` and embedded by the same Celery workers as jobs."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, user_passes_test
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

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
    faces = [face_thumb(face, 120) for face in selectors.member_faces(member=member)]
    uploads = member.uploads.order_by("-created_at")[:20]
    return render(request, "members/member_detail.html", {"member": member, "faces": faces, "uploads": uploads})


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
    return render(request, "members/enrol.html", {"form": form})
