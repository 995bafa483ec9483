"""Pages of the recognition app."""
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from recognition.engine.model_fetch import is_installed
from recognition.runtime import active_model_spec
from django.conf import settings


def home(request: HttpRequest) -> HttpResponse:
    spec = active_model_spec()
    return render(request, "home.html", {
        "model": spec,
        "model_installed": is_installed(spec, settings.FACESITE_MODEL_DIR),
    })
