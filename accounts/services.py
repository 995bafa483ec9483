"""Writes and checks of API tokens: ``token_create`` (returns the plaintext once), ``token_authenticate``."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from .models import ApiToken

# "fst_" + 8-char public prefix + "_" + 43 url-safe characters (256 random bits).
TOKEN_TAG = "fst_"
PREFIX_CHARS = 8
# last_used_at is refreshed at most this often, so every request is not a write.
LAST_USED_RESOLUTION = timedelta(minutes=5)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_create(*, user, name: str = "api") -> tuple[ApiToken, str]:
    """A new token for ``user``: the row and the plaintext, which is never stored."""
    if isinstance(user, str):
        user = get_user_model().objects.get(**{get_user_model().USERNAME_FIELD: user})
    while True:
        prefix = secrets.token_hex(PREFIX_CHARS // 2)
        if not ApiToken.objects.filter(prefix=prefix).exists():
            break
    plaintext = f"{TOKEN_TAG}{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiToken.objects.create(user=user, name=(name or "api")[:100], prefix=prefix, key_hash=_hash(plaintext))
    return row, plaintext


def token_authenticate(*, plaintext: str) -> ApiToken | None:
    """The active token row for a presented token, or None. Constant-time hash comparison."""
    if not plaintext.startswith(TOKEN_TAG) or len(plaintext) > 100:
        return None
    prefix = plaintext[len(TOKEN_TAG) : len(TOKEN_TAG) + PREFIX_CHARS]
    row = ApiToken.objects.select_related("user").filter(prefix=prefix, is_active=True).first()
    if row is None or not hmac.compare_digest(row.key_hash, _hash(plaintext)):
        return None
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        row.last_used_at = now
    return row


def token_revoke(*, token: ApiToken | int) -> None:
    ApiToken.objects.filter(pk=getattr(token, "pk", token)).update(is_active=False)
