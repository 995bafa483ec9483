"""/api/: the versioned REST API (v1), its OpenAPI schema and the interactive docs."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from facesite.api import views as api_views
from members import api as members_api
from recognition import api as recognition_api
from recognition import camera_api, unknown_api, video_api

v1 = (
    [
        path("recognize", recognition_api.RecognizeView.as_view(), name="recognize"),
        path("jobs/<int:job_id>", recognition_api.JobDetailView.as_view(), name="job-detail"),
        path("detect", recognition_api.DetectView.as_view(), name="detect"),
        path("embeddings", recognition_api.EmbeddingsView.as_view(), name="embeddings"),
        path("verify", recognition_api.VerifyView.as_view(), name="verify"),
        path("gallery", recognition_api.GalleryView.as_view(), name="gallery"),
        path("camera/frame", camera_api.CameraFrameView.as_view(), name="camera-frame"),
        path("videos", video_api.VideoListView.as_view(), name="video-list"),
        path("videos/<int:video_id>", video_api.VideoDetailView.as_view(), name="video-detail"),
        path("videos/<int:video_id>/cancel", video_api.VideoCancelView.as_view(), name="video-cancel"),
        path(
            "videos/<int:video_id>/thumbnails/<int:index>",
            video_api.VideoThumbnailView.as_view(),
            name="video-thumbnail",
        ),
        path("unknown-clusters", unknown_api.UnknownClusterListView.as_view(), name="unknown-cluster-list"),
        path(
            "unknown-clusters/<int:cluster_id>",
            unknown_api.UnknownClusterDetailView.as_view(),
            name="unknown-cluster-detail",
        ),
        path(
            "unknown-clusters/<int:cluster_id>/assign",
            unknown_api.UnknownClusterAssignView.as_view(),
            name="unknown-cluster-assign",
        ),
        path(
            "unknown-clusters/<int:cluster_id>/merge",
            unknown_api.UnknownClusterMergeView.as_view(),
            name="unknown-cluster-merge",
        ),
        path(
            "unknown-clusters/<int:cluster_id>/split",
            unknown_api.UnknownClusterSplitView.as_view(),
            name="unknown-cluster-split",
        ),
        path(
            "unknown-clusters/<int:cluster_id>/dismiss",
            unknown_api.UnknownClusterDismissView.as_view(),
            name="unknown-cluster-dismiss",
        ),
        path(
            "members/<int:member_id>/appearances",
            unknown_api.MemberAppearancesView.as_view(),
            name="member-appearances",
        ),
        path("members", members_api.MemberListView.as_view(), name="member-list"),
        path("members/bulk", members_api.MemberBulkView.as_view(), name="member-bulk"),
        path("members/bulk/<str:bulk_id>", members_api.MemberBulkDetailView.as_view(), name="member-bulk-detail"),
        path("members/<int:member_id>", members_api.MemberDetailView.as_view(), name="member-detail"),
        path("members/<int:member_id>/faces", members_api.MemberFacesView.as_view(), name="member-faces"),
        path(
            "members/<int:member_id>/faces/<int:face_id>",
            members_api.MemberFaceDetailView.as_view(),
            name="member-face-detail",
        ),
        path(
            "members/<int:member_id>/faces/<int:face_id>/confirm",
            members_api.MemberFaceConfirmView.as_view(),
            name="member-face-confirm",
        ),
    ],
    "api",
)

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Anything else under /api/ (a bad id, a typo) is a JSON 404 too, not the HTML page.
    # [\s\S], not ".": a path with a newline in it (%0A) is an API 404 in JSON too, not the HTML
    # page ("(?s)" would do the same but Django cannot reverse a pattern with flags).
    re_path(r"^[\s\S]*$", api_views.not_found, name="api-not-found"),
]
