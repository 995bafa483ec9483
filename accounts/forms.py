"""Log-in forms that say why a throttled log-in is refused (the backend refuses it anyway)."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm

from .login_throttle import client_address, login_refusal


class _ThrottleMessage:
    """Checked before the password: a refused attempt learns nothing about the password."""

    throttled = False
    retry_after: int | None = None  # seconds, for the 429's Retry-After

    def clean(self):
        refusal = login_refusal(username=self.data.get("username"), address=client_address(self.request))
        if refusal is not None:
            self.throttled, self.retry_after = True, refusal.retry_after
            raise forms.ValidationError(refusal.message, code="throttled")
        return super().clean()


class ThrottledAuthenticationForm(_ThrottleMessage, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(_ThrottleMessage, AdminAuthenticationForm):
    pass
