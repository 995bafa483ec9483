"""The pages' log-in: Django's LoginView with the throttled form, answering 429 when refused."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import LoginView

from .forms import ThrottledAuthenticationForm


class ThrottledLoginView(LoginView):
    authentication_form = ThrottledAuthenticationForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if getattr(form, "throttled", False):
            response.status_code = 429
            response["Retry-After"] = str(getattr(form, "retry_after", None) or settings.LOGIN_THROTTLE_WINDOW)
        return response
