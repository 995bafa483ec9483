"""The authentication backend: Django's ModelBackend behind the log-in throttle.

Enforcing in the backend covers every caller of ``authenticate()`` (the pages' log-in, the
admin's, anything added later); the forms in ``accounts.forms`` only turn a refusal into a
clear message. PermissionDenied stops ``authenticate()`` at once, without trying the password.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from .login_throttle import client_address, login_refusal


class ThrottledModelBackend(ModelBackend):
    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if login_refusal(username=username, address=client_address(request)) is not None:
            raise PermissionDenied("Too many failed log-in attempts.")
        return super().authenticate(request, username=username, password=password, **kwargs)
