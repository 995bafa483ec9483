"""The recognition endpoints of /api/v1/: recognise (a job), jobs, detect, embeddings, verify.

Thin views: an input serializer validates (images are read up to the size limit, their type is
judged by the engine from the content), a service or the engine acts, an output serializer
answers. Errors are raised as the engine's/services' exceptions and shaped by
facesite.api.errors.
"""

from __future__ import annotations

import time

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from accounts.permissions import CanManageMembers
from facesite import engine
from facesite.api.errors import ApiError
from facesite.api.views import (
    IMAGE_ERRORS,
    ApiView,
    error_responses,
    image_request,
    valid_id,
)
from recognition import selectors, services, verification
from recognition.serializers import (
    DetectOut,
    EmbeddingsOut,
    GalleryOut,
    ImageInput,
    JobOut,
    RecognizeQuery,
    VerifyInput,
    VerifyOut,
)

WAIT_POLL_SECONDS = 0.1


def _job_data(request, job) -> dict:
    data = selectors.job_result(job=job)
    data["url"] = request.build_absolute_uri(reverse("api:job-detail", args=[job.pk]))
    return data


def _face_dict(face) -> dict | None:
    return face.to_dict() if face is not None else None


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
    @extend_schema(
        operation_id="job_read",
        summary="A recognition job: status and faces",
        responses={200: JobOut, **error_responses(404)},
        tags=["recognition"],
    )
    def get(self, request, job_id: int):
        valid = valid_id(job_id)
        job = selectors.job_get_for_user(user=request.user, job_id=valid) if valid else None
        if job is None:
            raise ApiError("job_not_found", "No such job (or it is not yours).")
        return Response(JobOut(_job_data(request, job)).data)


# ------------------------------------------------------------------------------- engine calls


class DetectView(ApiView):
    uses_engine = True

    @extend_schema(
        operation_id="detect",
        summary="Faces of a photo: boxes, scores, landmarks",
        request=image_request(ImageInput),
        responses={200: DetectOut, **error_responses(*IMAGE_ERRORS)},
        tags=["engine"],
    )
    def post(self, request):
        data = ImageInput(data=request.data)
        data.is_valid(raise_exception=True)
        recognizer = engine.recognizer()
        rgb = recognizer.load(data.validated_data["image"][1])
        faces = recognizer.detect(rgb)
        body = {
            "image": {"width": int(rgb.shape[1]), "height": int(rgb.shape[0])},
            "faces": [f.to_dict() for f in faces],
        }
        return Response(DetectOut(body).data)


class EmbeddingsView(ApiView):
    uses_engine = True

    @extend_schema(
        operation_id="embeddings",
        summary="The embedding of every face (the old get_embd)",
        request=image_request(ImageInput),
        responses={200: EmbeddingsOut, **error_responses(*IMAGE_ERRORS)},
        tags=["engine"],
    )
    def post(self, request):
        data = ImageInput(data=request.data)
        data.is_valid(raise_exception=True)
        recognizer = engine.recognizer()
        rgb = recognizer.load(data.validated_data["image"][1])
        faces = recognizer.analyze(rgb)
        body = {
            "model": recognizer.model_name,
            "dim": recognizer.dim,
            "image": {"width": int(rgb.shape[1]), "height": int(rgb.shape[0])},
            "faces": [{**f.to_dict(), "embedding": [float(v) for v in f.embedding]} for f in faces],
        }
        return Response(EmbeddingsOut(body).data)


class VerifyView(ApiView):
    uses_engine = True

    @extend_schema(
        operation_id="verify",
        summary="Are two faces the same person?",
        description="Two photos (image, image2) or a photo and a member (member_id): the "
        "cosine similarity of the subjects' faces and the decision at the "
        "model's verification threshold. Two photos: any authenticated caller; "
        "a photo against a member needs members.view_member (403 otherwise).",
        request=image_request(VerifyInput),
        responses={200: VerifyOut, **error_responses(*IMAGE_ERRORS, 404, 422)},
        tags=["engine"],
    )
    def post(self, request):
        data = VerifyInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        result = verification.verify(
            user=request.user,
            image=values["image"][1],
            image2=values["image2"][1] if "image2" in values else None,
            member_id=values.get("member_id"),
        )
        return Response(VerifyOut(result.as_dict()).data)


class GalleryView(ApiView):
    """The gallery searched by recognition now: the model, its size, and the 1:N threshold."""

    permission_classes = [IsAuthenticated, CanManageMembers]  # GET: members.view_member

    @extend_schema(
        operation_id="gallery",
        summary="The gallery in use and its 1:N threshold",
        description="The active model, how many vectors a search compares a face with, and the "
        "threshold below which a face is unknown: calibrated for this gallery size and the target "
        "false-accept rate (FACESITE_FALSE_ACCEPT_RATE) unless FACESITE_IDENTIFICATION_THRESHOLD "
        "fixes it. Needs members.view_member.",
        responses={200: GalleryOut, **error_responses(403)},
        tags=["members"],
    )
    def get(self, request):
        from members.selectors import identification_bar

        spec = engine.active_model_spec()
        bar = identification_bar(model_name=spec.name)
        return Response(GalleryOut({"model": spec.name, "dim": spec.dim, **bar.to_dict()}).data)
