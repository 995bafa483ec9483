"""The "Unknown people" pages: clusters of unknown faces, largest first, and the forms that name,
merge, split and dismiss them. Staff or the member permissions only (unknown_selectors)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from faceengine.errors import FacesiteError
from facesite.files import private_file_response
from recognition import unknown_selectors as selectors
from recognition import unknowns

FACES_SHOWN = 12


def _require(allowed: bool) -> None:
    if not allowed:
        # Not a 403: nobody else learns that there are strangers' faces here.
        raise Http404("No such page.")


@login_required
def unknown_list(request: HttpRequest) -> HttpResponse:
    _require(selectors.can_view_unknowns(request.user))
    dismissed = request.GET.get("dismissed") == "1"
    page = Paginator(selectors.cluster_list(dismissed=dismissed), 20).get_page(request.GET.get("page"))
    clusters = [selectors.cluster_data(cluster=c, face_limit=FACES_SHOWN) for c in page.object_list]
    from members.selectors import member_list

    can_change = selectors.can_change_unknowns(request.user)
    return render(
        request,
        "recognition/unknown_list.html",
        {
            "page": page,
            "clusters": clusters,
            "dismissed": dismissed,
            "can_change": can_change,
            "can_add": selectors.can_name_as_new_member(request.user),
            "members": list(member_list(active=True).values("id", "display_name")) if can_change else [],
        },
    )


@login_required
def unknown_face_crop(request: HttpRequest, face_id: int) -> FileResponse:
    _require(selectors.can_view_unknowns(request.user))
    face = selectors.unknown_face_get(face_id=face_id)
    if face is None or not face.crop:
        raise Http404("No such face.")
    return private_file_response(face.crop)


def _int(request: HttpRequest, name: str) -> int:
    try:
        return int(request.POST.get(name, ""))
    except ValueError:
        raise unknowns.UnknownError(f"{name} must be a number.") from None


@login_required
@require_http_methods(["POST"])
def unknown_action(request: HttpRequest) -> HttpResponse:
    """The cluster forms: ``cluster`` and ``action``: assign (``member`` or ``display_name``),
    merge (``other``), split (``face``), dismiss (``undo=1`` brings it back)."""
    _require(selectors.can_change_unknowns(request.user))
    action = request.POST.get("action", "")
    try:
        cluster_id = _int(request, "cluster")
        if action == "assign":
            name = request.POST.get("display_name", "").strip()
            if name:
                _require(selectors.can_name_as_new_member(request.user))
                result = unknowns.cluster_assign(cluster=cluster_id, display_name=name, actor=request.user)
            else:
                result = unknowns.cluster_assign(
                    cluster=cluster_id, member_id=_int(request, "member"), actor=request.user
                )
            messages.success(
                request,
                f"{result.faces_sent} face(s) are being added to {result.member.display_name}; "
                "they count for the next photos once the worker is done.",
            )
        elif action == "merge":
            merged = unknowns.cluster_merge(cluster=cluster_id, other=_int(request, "other"))
            messages.success(request, f"Merged: the cluster now has {merged.size} faces.")
        elif action == "split":
            unknowns.cluster_split(cluster=cluster_id, face_id=_int(request, "face"))
            messages.success(request, "The face was taken out into a cluster of its own.")
        elif action == "dismiss":
            unknowns.cluster_dismiss(cluster=cluster_id, dismissed=request.POST.get("undo") != "1")
            messages.success(request, "Done.")
        else:
            raise Http404("No such action.")
    except FacesiteError as exc:
        messages.error(request, f"Nothing changed: {exc.message}")
    return redirect("unknown-list")
