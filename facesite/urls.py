"""URL wiring."""
from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # --- REST API: /api/v1/..., /api/schema/, /api/docs/ (facesite/api_urls.py)
    path("api/", include("facesite.api_urls")),
    # --- pages (worker engineer): upload, jobs, history, members, log in / log out
    path("accounts/", include("django.contrib.auth.urls")),
    path("members/", include("members.urls")),
    path("", include("recognition.urls")),
    # --- end pages
]
if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
