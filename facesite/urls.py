"""URL wiring."""

from django.contrib import admin
from django.urls import include, path

from facesite import health

urlpatterns = [
    # --- liveness and readiness for load balancers (facesite/health.py): no slash, no auth
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    # REST API: /api/v1/..., /api/schema/, /api/docs/ (facesite/api/urls.py)
    path("api/", include("facesite.api.urls")),
    # Pages: upload, jobs, history, members, log in / log out
    path("accounts/", include("accounts.urls")),  # django.contrib.auth.urls with a throttled log-in
    path("members/", include("members.urls")),
    path("", include("recognition.urls")),
]
# No static(MEDIA_URL) here, even with DEBUG: uploaded photos are private and are served only by
# the permission-checked views (facesite.files.private_file_response).
