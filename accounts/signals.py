"""Counting log-ins for the throttle (connected in AccountsConfig.ready)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from .login_throttle import client_address, login_failure_record, login_success_record


@receiver(user_login_failed, dispatch_uid="accounts.login_failed")
def _count_failure(sender, credentials: dict, request=None, **kwargs) -> None:
    username = credentials.get("username") or credentials.get(get_user_model().USERNAME_FIELD)
    login_failure_record(username=username, address=client_address(request))


@receiver(user_logged_in, dispatch_uid="accounts.logged_in")
def _clear_failures(sender, request, user, **kwargs) -> None:
    login_success_record(username=user.get_username())
