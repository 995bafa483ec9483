"""The recognition endpoints of /api/v1/: recognise (a job), jobs, detect, embeddings, verify.

Thin views: an input serializer validates (images are read up to the size limit, their type is
judged by the engine from the content), a service or the engine acts, an output serializer
answers. Errors are raised as the engine's/services' exceptions and shaped by
facesite.api_errors.
"""
from __future__ import annotations

import time

import numpy as np
from django.conf import settings
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from facesite.api_errors import ApiError, RequestTooLarge
from recognition import selectors, services
from recognition.serializers import (
    DetectOut,
    EmbeddingsOut,
    ErrorResponse,
    ImageInput,
    JobOut,
    RecognizeQuery,
    VerifyInput,
    VerifyOut,
    json_variant,
)

MAX_ID = 2**63 - 1
WAIT_POLL_SECONDS = 0.1

_ERROR_TEXT = {
    400: "Bad request: unreadable image, invalid fields (code says which).",
    401: "No credentials, or a token that is not valid.",
    403: "Authenticated, but without the permission.",
    404: "Not found (member_not_found, job_not_found, face_not_found).",
    409: "Conflict (duplicate_external_id).",
    413: "Too large (image_too_large, request_too_large).",
    415: "The file is not an image of a supported type (unsupported_image_type).",
    422: "No usable face (no_face), or nothing to compare with (no_template).",
    429: "Rate limited (rate_limited); see Retry-After.",
}


def error_responses(*codes: int) -> dict:
    """OpenAPI responses for error statuses, all of the ErrorResponse shape."""
    wanted = sorted({400, 401, 403, 429, *codes})
    return {code: OpenApiResponse(ErrorResponse, description=_ERROR_TEXT.get(code, "Error.")) for code in wanted}


IMAGE_ERRORS = (400, 413, 415)


def image_request(serializer_class, json_serializer=None) -> dict:
    """A request body that is multipart (files) or JSON (base64 strings)."""
    return {"multipart/form-data": serializer_class,
            "application/json": json_serializer or json_variant(serializer_class)}


def valid_id(value) -> int | None:
    """A path id usable in a query (big numbers would overflow the database's integer)."""
    try:
        value = int(value)
    except (TypeError, ValueError):
        return None
    return value if 0 < value <= MAX_ID else None


class ApiView(APIView):
    """The base of every /api/v1/ view: the request size is checked from its Content-Length
    before anything reads the body (or authentication parses a form for the CSRF check)."""

    uses_engine = False  # True: the stricter "engine" rate applies (EngineRateThrottle)
    max_request_setting = "FACESITE_API_MAX_REQUEST_BYTES"

    def initial(self, request, *args, **kwargs):
        if request.method in ("POST", "PUT", "PATCH"):
            limit = getattr(settings, self.max_request_setting)
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                raise RequestTooLarge(f"The request is {length} bytes; the limit is {limit}.")
        super().initial(request, *args, **kwargs)


def _engine():
    """The process-wide recognizer (the same hook the member services use; tests swap it)."""
    from members.services import engine_recognizer

    return engine_recognizer()


def _job_data(request, job) -> dict:
    data = selectors.job_result(job=job)
    data["url"] = request.build_absolute_uri(reverse("api:job-detail", args=[job.pk]))
    return data


def _face_dict(face) -> dict:
    return face.to_dict() if face is not None else None


@csrf_exempt  # it changes nothing; without this a POST would get the CSRF middleware's HTML 403
def not_found(request, *args, **kwargs):
    """Any /api/ address that matches no endpoint: the JSON error shape, not Django's page."""
    from django.http import JsonResponse

    from facesite.api_errors import error_body

    return JsonResponse(error_body("not_found", f"No endpoint at {request.path}."), status=404)


# ------------------------------------------------------------------------------- recognise


class RecognizeView(ApiView):
    uses_engine = True

    @extend_schema(
        operation_id="recognize",
        summary="Recognise every face of a photo (a job)",
        description="Queues a recognition job and answers 202 with its URL. With `?wait=SECONDS` "
                    "the call waits up to that long and answers 200 with the result if the job "
                    "finished by then.",
        parameters=[OpenApiParameter("wait", float, description="Seconds to wait for the result (0-30).")],
        request=image_request(ImageInput),
        responses={200: JobOut, 202: JobOut, **error_responses(*IMAGE_ERRORS)},
        tags=["recognition"],
    )
    def post(self, request):
        query = RecognizeQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = ImageInput(data=request.data)
        data.is_valid(raise_exception=True)
        name, raw = data.validated_data["image"]
        from django.core.files.base import ContentFile

        job = services.job_create(user=request.user, upload=ContentFile(raw, name=name))
        wait = query.validated_data["wait"]
        deadline = time.monotonic() + wait
        job.refresh_from_db()  # in eager mode the job has already run at the commit
        while not job.is_finished and time.monotonic() < deadline:
            time.sleep(WAIT_POLL_SECONDS)
            job.refresh_from_db()
        body = JobOut(_job_data(request, job)).data
        if wait and job.is_finished:
            return Response(body, status=status.HTTP_200_OK)
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


class JobDetailView(ApiView):
    @extend_schema(operation_id="job_read", summary="A recognition job: status and faces",
                   responses={200: JobOut, **error_responses(404)}, tags=["recognition"])
    def get(self, request, job_id: int):
        job_id = valid_id(job_id)
        job = selectors.job_get_for_user(user=request.user, job_id=job_id) if job_id else None
        if job is None:
            raise ApiError("job_not_found", "No such job (or it is not yours).")
        return Response(JobOut(_job_data(request, job)).data)


# ------------------------------------------------------------------------------- engine calls


class DetectView(ApiView):
    uses_engine = True

    @extend_schema(operation_id="detect", summary="Faces of a photo: boxes, scores, landmarks",
                   request=image_request(ImageInput),
                   responses={200: DetectOut, **error_responses(*IMAGE_ERRORS)}, tags=["engine"])
    def post(self, request):
        data = ImageInput(data=request.data)
        data.is_valid(raise_exception=True)
        recognizer = _engine()
        rgb = recognizer.load(data.validated_data["image"][1])
        faces = recognizer.detect(rgb)
        body = {"image": {"width": int(rgb.shape[1]), "height": int(rgb.shape[0])},
                "faces": [f.to_dict() for f in faces]}
        return Response(DetectOut(body).data)


class EmbeddingsView(ApiView):
    uses_engine = True

    @extend_schema(operation_id="embeddings", summary="The embedding of every face (the old get_embd)",
                   request=image_request(ImageInput),
                   responses={200: EmbeddingsOut, **error_responses(*IMAGE_ERRORS)}, tags=["engine"])
    def post(self, request):
        data = ImageInput(data=request.data)
        data.is_valid(raise_exception=True)
        recognizer = _engine()
        rgb = recognizer.load(data.validated_data["image"][1])
        faces = recognizer.analyze(rgb)
        body = {
            "model": recognizer.model_name, "dim": recognizer.dim,
            "image": {"width": int(rgb.shape[1]), "height": int(rgb.shape[0])},
            "faces": [{**f.to_dict(), "embedding": [float(v) for v in f.embedding]} for f in faces],
        }
        return Response(EmbeddingsOut(body).data)


def _primary(recognizer, raw: bytes, label: str):
    """The subject's face and its normalised embedding; a photo without a face is refused.

    Not ``Recognizer.embed_primary``: its blind centre-crop fallback is fine for a gallery, not
    for a same-person decision (and it fails on photos of a few pixels).
    """
    from recognition.engine.detection import primary_face_index
    from recognition.engine.recognizer import Face

    rgb = recognizer.load(raw)
    found, _second = recognizer.detector.detect_thorough(rgb)
    if not found:
        raise ApiError("no_face", f"No face was found in {label}.")
    best = found[primary_face_index(found, rgb.shape)]
    face = Face(tuple(float(v) for v in best.box), float(best.score), np.asarray(best.landmarks, np.float32))
    vector = np.asarray(recognizer.embed_faces(rgb, [face])[0], np.float64)
    return face, vector / (np.linalg.norm(vector) or 1.0)


def _member_template(member_id: int, model_name: str, dim: int) -> np.ndarray:
    # A read of one row; kept here rather than in members.selectors, which another change owns.
    from members.models import Member, Template

    if not Member.objects.filter(pk=member_id).exists():
        raise ApiError("member_not_found", f"No member with id {member_id}.")
    template = Template.objects.filter(member_id=member_id, model_name=model_name, dim=dim, count__gt=0).first()
    if template is None:
        raise ApiError("no_template", f"Member {member_id} has no enrolled face for the model {model_name}.")
    vector = template.as_array().astype(np.float64)
    return vector / (np.linalg.norm(vector) or 1.0)


class VerifyView(ApiView):
    uses_engine = True

    @extend_schema(operation_id="verify", summary="Are two faces the same person?",
                   description="Two photos (image, image2) or a photo and a member (member_id): the "
                               "cosine similarity of the subjects' faces and the decision at the "
                               "model's verification threshold. Two photos: any authenticated caller; "
                               "a photo against a member needs members.view_member (403 otherwise).",
                   request=image_request(VerifyInput),
                   responses={200: VerifyOut, **error_responses(*IMAGE_ERRORS, 404, 422)}, tags=["engine"])
    def post(self, request):
        from recognition.runtime import active_model_spec

        data = VerifyInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        member_id = values.get("member_id")
        if member_id and not request.user.has_perm("members.view_member"):
            # A photo against a member says whether the photo is that member: a read of the
            # gallery. Checked before the member is looked up, so ids cannot be enumerated.
            raise ApiError("permission_denied", "Comparing a photo with a member needs permission "
                                                "to view members (members.view_member).", status_code=403)
        recognizer = _engine()
        # The member is checked first: a 404 should not cost an engine run.
        other = _member_template(member_id, recognizer.model_name, recognizer.dim) if member_id else None
        face, vector = _primary(recognizer, values["image"][1], "image")
        face2 = None
        if other is None:
            face2, other = _primary(recognizer, values["image2"][1], "image2")
        similarity = float(np.dot(vector, other))
        threshold = float(active_model_spec().verification_threshold)  # the configured model's 1:1 bar
        body = {"model": recognizer.model_name, "similarity": round(similarity, 4), "threshold": threshold,
                "same_person": similarity >= threshold, "member_id": member_id,
                "face": _face_dict(face), "face2": _face_dict(face2)}
        return Response(VerifyOut(body).data)
