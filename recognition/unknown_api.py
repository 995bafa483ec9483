"""/api/v1/unknown-clusters (unknown people) and /api/v1/members/{id}/appearances.

Seeing clusters needs staff or ``members.view_member``; naming, merging, splitting and
dismissing need staff or ``members.change_member`` (and ``members.add_member`` to name a
cluster as a new member). Thin: selectors read, ``recognition.unknowns`` writes.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.response import Response

from facesite.api.errors import ApiError
from facesite.api.views import ApiView, error_responses, valid_id
from members.errors import PermissionRefused
from recognition import unknown_selectors as selectors
from recognition import unknowns
from recognition.unknown_serializers import (
    AppearanceListOut,
    AssignIn,
    AssignOut,
    DismissIn,
    MergeIn,
    SplitIn,
    SplitOut,
    UnknownClusterListOut,
    UnknownClusterListQuery,
    UnknownClusterOut,
)


class CanSeeUnknowns(permissions.BasePermission):
    message = "Unknown people are for staff or users with the member permissions."

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return selectors.can_view_unknowns(request.user)
        return selectors.can_change_unknowns(request.user)


PERMISSIONS = [permissions.IsAuthenticated, CanSeeUnknowns]


def _cluster_id(value) -> int:
    cluster_id = valid_id(value)
    if cluster_id is None:
        raise unknowns.ClusterNotFound(f"No unknown cluster with id {value}.")
    return cluster_id


def _data(cluster_id: int) -> dict:
    cluster = selectors.cluster_get(cluster_id=cluster_id)
    if cluster is None:
        raise unknowns.ClusterNotFound(f"No unknown cluster with id {cluster_id}.")
    return selectors.cluster_data(cluster=cluster)


class UnknownClusterListView(ApiView):
    permission_classes = PERMISSIONS

    @extend_schema(
        operation_id="unknown_clusters_list",
        summary="Unknown people: clusters of unknown faces, largest first",
        parameters=[UnknownClusterListQuery],
        responses={200: UnknownClusterListOut, **error_responses()},
        tags=["unknown people"],
    )
    def get(self, request):
        query = UnknownClusterListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        clusters = selectors.cluster_list(dismissed=query.validated_data["dismissed"])[: query.validated_data["limit"]]
        body = {"results": [selectors.cluster_data(cluster=c) for c in clusters]}
        return Response(UnknownClusterListOut(body).data)


class UnknownClusterDetailView(ApiView):
    permission_classes = PERMISSIONS

    @extend_schema(
        operation_id="unknown_cluster_read",
        responses={200: UnknownClusterOut, **error_responses(404)},
        tags=["unknown people"],
    )
    def get(self, request, cluster_id: int):
        return Response(UnknownClusterOut(_data(_cluster_id(cluster_id))).data)


class UnknownClusterAssignView(ApiView):
    permission_classes = PERMISSIONS

    @extend_schema(
        operation_id="unknown_cluster_assign",
        summary="Name a cluster: a new member (display_name) or an existing one (member_id)",
        description="Every face of the cluster is queued as an enrolment photo of the member "
        "(audited); the cluster is then removed. A new member needs members.add_member.",
        request=AssignIn,
        responses={200: AssignOut, **error_responses(404)},
        tags=["unknown people"],
    )
    def post(self, request, cluster_id: int):
        cluster_id = _cluster_id(cluster_id)
        data = AssignIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if "display_name" in values and not selectors.can_name_as_new_member(request.user):
            raise PermissionRefused("Naming a cluster as a new member needs the add-member permission.")
        result = unknowns.cluster_assign(
            cluster=cluster_id,
            member_id=values.get("member_id"),
            display_name=values.get("display_name"),
            actor=request.user,
        )
        body = {
            "member_id": result.member.pk,
            "display_name": result.member.display_name,
            "created": result.created,
            "faces_sent": result.faces_sent,
        }
        return Response(AssignOut(body).data)


class UnknownClusterMergeView(ApiView):
    permission_classes = PERMISSIONS

    @extend_schema(
        operation_id="unknown_cluster_merge",
        summary="Merge another cluster into this one",
        request=MergeIn,
        responses={200: UnknownClusterOut, **error_responses(404, 409)},
        tags=["unknown people"],
    )
    def post(self, request, cluster_id: int):
        cluster_id = _cluster_id(cluster_id)
        data = MergeIn(data=request.data)
        data.is_valid(raise_exception=True)
        merged = unknowns.cluster_merge(cluster=cluster_id, other=data.validated_data["other_id"])
        return Response(UnknownClusterOut(_data(merged.pk)).data)


class UnknownClusterSplitView(ApiView):
    permission_classes = PERMISSIONS

    @extend_schema(
        operation_id="unknown_cluster_split",
        summary="Take a wrong face out of a cluster (into a cluster of its own)",
        request=SplitIn,
        responses={200: SplitOut, **error_responses(404)},
        tags=["unknown people"],
    )
    def post(self, request, cluster_id: int):
        cluster_id = _cluster_id(cluster_id)
        data = SplitIn(data=request.data)
        data.is_valid(raise_exception=True)
        alone = unknowns.cluster_split(cluster=cluster_id, face_id=data.validated_data["face_id"])
        return Response(SplitOut({"cluster": _data(cluster_id), "new_cluster": _data(alone.pk)}).data)


class UnknownClusterDismissView(ApiView):
    permission_classes = PERMISSIONS

    @extend_schema(
        operation_id="unknown_cluster_dismiss",
        summary="Dismiss a cluster (or bring it back with dismissed=false)",
        request=DismissIn,
        responses={200: UnknownClusterOut, **error_responses(404)},
        tags=["unknown people"],
    )
    def post(self, request, cluster_id: int):
        cluster_id = _cluster_id(cluster_id)
        data = DismissIn(data=request.data)
        data.is_valid(raise_exception=True)
        found = unknowns.cluster_dismiss(cluster=cluster_id, dismissed=data.validated_data["dismissed"])
        return Response(UnknownClusterOut(_data(found.pk)).data)


class MemberAppearancesView(ApiView):
    """Where does this person appear: the photo jobs and videos a member was recognised in, newest first."""

    permission_classes = PERMISSIONS

    @extend_schema(
        operation_id="member_appearances",
        summary="The photo jobs and videos in which a member was recognised, newest first",
        responses={200: AppearanceListOut, **error_responses(404)},
        tags=["members"],
    )
    def get(self, request, member_id: int):
        from members.selectors import member_get

        valid = valid_id(member_id)
        if valid is None:
            raise ApiError("member_not_found", f"No member with id {member_id}.")
        member = member_get(member_id=valid)
        rows = selectors.member_appearances(member_id=member.pk, limit=500)
        return Response(AppearanceListOut({"results": rows}).data)
