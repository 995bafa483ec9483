"""The pages' log-in: Django's LoginView with the throttled form, answering 429 when refused."""
from __future__ import annotations

from django.contrib.auth.views import LoginView

from .forms import ThrottledAuthenticationForm


class ThrottledLoginView(LoginView):
    authentication_form = ThrottledAuthenticationForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if getattr(form, "throttled", False):
            response.status_code = 429
        return response
