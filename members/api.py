"""The member endpoints of /api/v1/: list/search, create with photos (add_customs), read, update,
delete (del_customs), faces (add_embds / update_customs, list, delete, confirm a flagged one) and
bulk enrolment.

Thin views: input serializer -> members.services -> output serializer. Every write needs the
matching Django permission on members.Member (accounts.permissions.CanManageMembers). A failed
enrolment raises before anything is written, so there is never a half-created member.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from accounts.permissions import CanManageMembers
from facesite.api.errors import ApiError
from facesite.api.views import (
    IMAGE_ERRORS,
    ApiView,
    error_responses,
    image_request,
    valid_id,
)
from members import bulk, selectors, services
from members.models import FaceSample
from members.serializers import (
    BulkIn,
    BulkOut,
    FaceConfirmOut,
    FaceSampleOut,
    FacesIn,
    MemberCreateIn,
    MemberEnrolledOut,
    MemberListQuery,
    MemberOut,
    MemberPageOut,
    MemberUpdateIn,
)

logger = logging.getLogger(__name__)

MEMBER_PERMISSIONS = [IsAuthenticated, CanManageMembers]


def _member_id(value) -> int:
    member_id = valid_id(value)
    if member_id is None:
        raise ApiError("member_not_found", f"No member with id {value}.")
    return member_id


def _member_data(request, member, face_count: int | None = None) -> dict:
    if face_count is None:
        face_count = getattr(member, "face_count", None)
        if face_count is None:
            face_count = FaceSample.objects.filter(member_id=member.pk).count()
    return {
        "id": member.pk,
        "display_name": member.display_name,
        "external_id": member.external_id,
        "notes": member.notes,
        "is_active": member.is_active,
        "face_count": face_count,
        "url": request.build_absolute_uri(reverse("api:member-detail", args=[member.pk])),
        "created_at": member.created_at,
        "updated_at": member.updated_at,
    }


def _enrolled(request, result) -> dict:
    return {
        "member": _member_data(request, result.member),
        "enrolment": {
            "model_name": result.model_name,
            "template_count": result.template_count,
            "photos": [o.as_dict() for o in result.outcomes],
        },
    }


def _photos(values: dict) -> list[tuple[str, bytes]]:
    return list(values.get("photos") or [])


# ------------------------------------------------------------------------------- members


class MemberListView(ApiView):
    permission_classes = MEMBER_PERMISSIONS

    @property
    def uses_engine(self) -> bool:
        return self.request.method == "POST"

    @extend_schema(
        operation_id="members_list",
        summary="Members, paginated and searchable",
        parameters=[
            OpenApiParameter("search", str, description="Part of the name, or an exact external id."),
            OpenApiParameter("active", bool),
            OpenApiParameter("page", int),
        ],
        responses={200: MemberPageOut, **error_responses(404)},
        tags=["members"],
    )
    def get(self, request):
        query = MemberListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        members = selectors.member_list(
            search=query.validated_data.get("search") or None, active=query.validated_data.get("active")
        )
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(members, request, view=self)
        return paginator.get_paginated_response(MemberOut([_member_data(request, m) for m in page], many=True).data)

    @extend_schema(
        operation_id="members_create",
        summary="Enrol a member with photos (add_customs)",
        description="Photos without a face are reported per photo; if photos are given and "
        "none has a face, nothing is created (422 no_face).",
        request=image_request(MemberCreateIn),
        responses={201: MemberEnrolledOut, **error_responses(*IMAGE_ERRORS, 409, 422)},
        tags=["members"],
    )
    def post(self, request):
        data = MemberCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        photos = _photos(values)
        values.pop("photos", None)
        result = services.member_create(photos=photos, actor=request.user, **values)
        return Response(MemberEnrolledOut(_enrolled(request, result)).data, status=status.HTTP_201_CREATED)


class MemberDetailView(ApiView):
    permission_classes = MEMBER_PERMISSIONS

    @extend_schema(operation_id="members_read", responses={200: MemberOut, **error_responses(404)}, tags=["members"])
    def get(self, request, member_id: int):
        member = selectors.member_get(member_id=_member_id(member_id))
        return Response(MemberOut(_member_data(request, member)).data)

    def _update(self, request, member_id: int, partial: bool):
        member_id = _member_id(member_id)
        data = MemberUpdateIn(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        member = services.member_update(member=member_id, actor=request.user, **data.validated_data)
        return Response(MemberOut(_member_data(request, member)).data)

    @extend_schema(
        operation_id="members_update",
        request=MemberUpdateIn,
        responses={200: MemberOut, **error_responses(404, 409)},
        tags=["members"],
    )
    def put(self, request, member_id: int):
        return self._update(request, member_id, partial=False)

    @extend_schema(
        operation_id="members_partial_update",
        request=MemberUpdateIn,
        responses={200: MemberOut, **error_responses(404, 409)},
        tags=["members"],
    )
    def patch(self, request, member_id: int):
        return self._update(request, member_id, partial=True)

    @extend_schema(
        operation_id="members_delete",
        summary="Delete a member and everything of theirs (del_customs)",
        responses={204: None, **error_responses(404)},
        tags=["members"],
    )
    def delete(self, request, member_id: int):
        services.member_delete(member=_member_id(member_id), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# ------------------------------------------------------------------------------- faces


def _face_data(request, face: FaceSample) -> dict:
    # The permission-checked page view, not MEDIA_URL: stored photos are never served publicly.
    photo_url = reverse("member-face-photo", args=[face.pk])
    return {
        "id": face.pk,
        "photo_url": request.build_absolute_uri(photo_url),
        "image_width": face.image_width,
        "image_height": face.image_height,
        "box": list(face.box),
        "landmarks": face.landmarks,
        "detection_score": face.detection_score,
        "detection": face.detection,
        "detector": face.detector,
        "quality": {
            "eye_distance": face.eye_distance,
            "box_size": face.box_size,
            "sharpness": face.sharpness,
            "detection_score": face.detection_score,
            "yaw": face.yaw,
            "pitch": face.pitch,
            "roll": face.roll,
            "warnings": face.quality_warnings or [],
        },
        "status": face.status,
        "outlier_similarity": face.outlier_similarity,
        "outlier_model": face.outlier_model,
        "in_template": face.in_template,
        "created_at": face.created_at,
    }


class MemberFacesView(ApiView):
    permission_classes = MEMBER_PERMISSIONS
    member_perms = {"POST": "members.change_member"}

    @property
    def uses_engine(self) -> bool:
        return self.request.method == "POST"

    @extend_schema(
        operation_id="member_faces_list",
        responses={200: FaceSampleOut(many=True), **error_responses(404)},
        tags=["members"],
    )
    def get(self, request, member_id: int):
        member = selectors.member_get(member_id=_member_id(member_id))
        faces = selectors.member_faces(member=member)
        return Response(FaceSampleOut([_face_data(request, f) for f in faces], many=True).data)

    @extend_schema(
        operation_id="member_faces_add",
        summary="Add photos to a member: mode=average (add_embds) or replace (update_customs)",
        request=image_request(FacesIn),
        responses={201: MemberEnrolledOut, **error_responses(*IMAGE_ERRORS, 404, 422)},
        tags=["members"],
    )
    def post(self, request, member_id: int):
        member_id = _member_id(member_id)
        selectors.member_get(member_id=member_id)  # 404 before any engine work
        data = FacesIn(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.member_add_faces(
            member=member_id, photos=_photos(data.validated_data), mode=data.validated_data["mode"], actor=request.user
        )
        return Response(MemberEnrolledOut(_enrolled(request, result)).data, status=status.HTTP_201_CREATED)


class MemberFaceDetailView(ApiView):
    permission_classes = MEMBER_PERMISSIONS
    member_perms = {"DELETE": "members.change_member"}

    @extend_schema(
        operation_id="member_faces_delete",
        summary="Delete one face (the template is recomputed)",
        responses={204: None, **error_responses(404)},
        tags=["members"],
    )
    def delete(self, request, member_id: int, face_id: int):
        member_id, face_pk = _member_id(member_id), valid_id(face_id)
        selectors.member_get(member_id=member_id)
        if face_pk is None or not FaceSample.objects.filter(pk=face_pk, member_id=member_id).exists():
            raise ApiError("face_not_found", f"Member {member_id} has no face with id {face_id}.")
        services.face_delete(faces=[face_pk], actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberFaceConfirmView(ApiView):
    permission_classes = MEMBER_PERMISSIONS
    member_perms = {"POST": "members.change_member"}

    @extend_schema(
        operation_id="member_faces_confirm",
        summary="Confirm a flagged face is the member: it goes back into the template",
        request=None,
        responses={200: FaceConfirmOut, **error_responses(404)},
        tags=["members"],
    )
    def post(self, request, member_id: int, face_id: int):
        member_id, face_pk = _member_id(member_id), valid_id(face_id)
        selectors.member_get(member_id=member_id)
        faces = selectors.member_faces(member=member_id)
        if face_pk is None or not faces.filter(pk=face_pk).exists():
            raise ApiError("face_not_found", f"Member {member_id} has no face with id {face_id}.")
        confirmed = services.member_face_confirm(faces=[face_pk], actor=request.user)
        face = faces.get(pk=face_pk)
        return Response(FaceConfirmOut({"confirmed": bool(confirmed), "face": _face_data(request, face)}).data)


# ------------------------------------------------------------------------------- bulk
# The zip handling and the status live in members.bulk; these views only translate.


def _bulk_data(request, bulk_id: str, data: dict) -> dict:
    return {
        "id": bulk_id,
        "url": request.build_absolute_uri(reverse("api:member-bulk-detail", args=[bulk_id])),
        "status": data.get("status", "queued"),
        "people": data.get("people", 0),
        "files": data.get("files", 0),
        "summary": data.get("summary"),
        "error": data.get("error"),
    }


class MemberBulkView(ApiView):
    permission_classes = MEMBER_PERMISSIONS
    uses_engine = True
    max_request_setting = "FACESITE_API_MAX_ZIP_BYTES"

    @extend_schema(
        operation_id="members_bulk",
        summary="Enrol many members from a zip (one folder per person)",
        request={"multipart/form-data": BulkIn},
        responses={202: BulkOut, **error_responses(413, 415)},
        tags=["members"],
    )
    def post(self, request):
        data = BulkIn(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["archive"]
        # Before anything is unpacked: who may touch existing members (members.services).
        services.check_bulk_permission(request.user, data.validated_data["on_existing"])
        if upload.size > settings.FACESITE_API_MAX_ZIP_BYTES:
            raise ApiError("request_too_large", "The zip is over the size limit.", status_code=413)
        bulk_id, record = bulk.bulk_create(
            user_id=request.user.pk, archive=upload, on_existing=data.validated_data["on_existing"]
        )
        body = BulkOut(_bulk_data(request, bulk_id, record)).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


class MemberBulkDetailView(ApiView):
    permission_classes = MEMBER_PERMISSIONS
    member_perms = {"GET": "members.add_member"}

    @extend_schema(
        operation_id="members_bulk_read",
        summary="The status of a bulk enrolment",
        responses={200: BulkOut, **error_responses(404)},
        tags=["members"],
    )
    def get(self, request, bulk_id: str):
        data = bulk.bulk_get(bulk_id=bulk_id, user_id=request.user.pk, is_superuser=request.user.is_superuser)
        if data is None:
            raise ApiError("bulk_not_found", "No such bulk enrolment (or it is not yours).", status_code=404)
        return Response(BulkOut(_bulk_data(request, bulk_id, data)).data)
