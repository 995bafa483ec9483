"""Pages of the recognition app: upload, a job's result, the history. Thin: services write,
selectors read, and the engine (TensorFlow) is never imported here."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from faceengine.model_fetch import is_installed
from facesite.api.errors import status_for_code
from facesite.engine import active_model_spec
from facesite.files import private_file_response
from recognition import selectors, services


def _wants_json(request: HttpRequest) -> bool:
    return request.headers.get("x-requested-with") == "XMLHttpRequest" or "application/json" in request.headers.get(
        "accept", ""
    )


@login_required
@require_http_methods(["GET", "POST"])
def home(request: HttpRequest) -> HttpResponse:
    """The upload page. The page's script posts one photo per request and expects JSON; the
    plain form (no script) posts them all at once and lands on the history."""
    if request.method == "POST":
        files = request.FILES.getlist("photos")
        if not files:
            if _wants_json(request):
                return JsonResponse({"error": {"code": "no_file", "message": "Choose a photo first."}}, status=400)
            messages.error(request, "Choose at least one photo.")
            return redirect("home")
        created, errors = [], []
        for upload in files:
            try:
                created.append(services.job_create(user=request.user, upload=upload))
            except services.UploadRejected as exc:
                errors.append(exc)
        if _wants_json(request):
            if errors:
                # The API's status for the same code (413 for image_too_large, 415, ...).
                return JsonResponse({"error": errors[0].as_dict()}, status=status_for_code(errors[0].code))
            job = created[0]
            return JsonResponse(
                {"id": job.pk, "status": job.status, "url": reverse("job-detail", args=[job.pk])}, status=201
            )
        for error in errors:
            messages.error(request, error.message)
        if len(created) == 1 and not errors:
            return redirect("job-detail", created[0].pk)
        if created:
            messages.success(request, f"{len(created)} photo(s) queued.")
        return redirect("job-list" if created else "home")
    spec = active_model_spec()
    return render(
        request,
        "recognition/upload.html",
        {
            "model": spec,
            "model_installed": is_installed(spec, settings.FACESITE_MODEL_DIR),
            "max_bytes": settings.FACESITE_MAX_UPLOAD_BYTES,
            "max_mb": settings.FACESITE_MAX_UPLOAD_BYTES / 1e6,
        },
    )


def _job_or_404(request: HttpRequest, job_id: int):
    job = selectors.job_get_for_user(user=request.user, job_id=job_id)
    if job is None:
        raise Http404("No such job.")
    return job


@login_required
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _job_or_404(request, job_id)
    from members.selectors import member_list

    members = list(member_list(active=True).values("id", "display_name")) if request.user.is_staff else []
    return render(
        request,
        "recognition/job_detail.html",
        {
            "job": job,
            "result": selectors.job_result(job=job),
            "members": members,
        },
    )


@login_required
def job_status(request: HttpRequest, job_id: int) -> JsonResponse:
    """What the job page polls until the job is finished."""
    job = _job_or_404(request, job_id)
    return JsonResponse(selectors.job_result(job=job))


@login_required
def job_photo(request: HttpRequest, job_id: int) -> FileResponse:
    """The uploaded photo, to its owner only (media files are not served publicly)."""
    return private_file_response(_job_or_404(request, job_id).photo)


@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    from django.core.paginator import Paginator

    page = Paginator(selectors.job_list_for_user(user=request.user), 25).get_page(request.GET.get("page"))
    return render(request, "recognition/job_list.html", {"page": page})


@login_required
@require_http_methods(["POST"])
def job_face_enrol(request: HttpRequest, job_id: int, face_index: int) -> HttpResponse:
    """ "This is ...": add an unknown face of the job to a member, through the enrolment workers."""
    if not request.user.is_staff:
        raise Http404("Only staff can enrol faces.")
    job = _job_or_404(request, job_id)
    from members.errors import MemberError
    from members.selectors import member_get

    try:
        member = member_get(member_id=int(request.POST.get("member", "")))
        services.job_face_enrol(job=job, face_index=face_index, member=member, actor=request.user)
    except (ValueError, MemberError, services.UploadRejected) as exc:
        messages.error(request, f"The face was not added: {exc}")
    else:
        messages.success(
            request,
            f"Face {face_index + 1} is being added to {member.display_name}; "
            "it counts for the next photos once the worker is done.",
        )
    return redirect("job-detail", job.pk)
