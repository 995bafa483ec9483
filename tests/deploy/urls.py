"""The project's URLs plus one view that logs, for the request-id tests."""

import logging

from django.http import HttpRequest, JsonResponse
from django.urls import path

from facesite.urls import urlpatterns as project_urlpatterns

logger = logging.getLogger("tests.deploy.view")


def logging_view(request: HttpRequest) -> JsonResponse:
    # Touching the user is what resolves it (as any view that checks permissions does).
    logger.info("inside the view, authenticated=%s", request.user.is_authenticated)
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("a handled error")
    return JsonResponse({"ok": True})


urlpatterns = [path("log-probe", logging_view), *project_urlpatterns]
