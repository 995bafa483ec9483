"""Per-user API tokens, stored hashed.

The plaintext is shown once, when the token is made (admin or ``manage.py create_api_token``);
the database keeps a short public prefix for the lookup and the SHA-256 of the whole token, so
a leaked database does not leak usable credentials. Tokens are random (256 bits), so a plain,
fast hash is enough: there is nothing to brute-force, unlike a password.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for (a script, a device).")
    # The first characters of the token, shown in lists and used to find the row.
    prefix = models.CharField(max_length=12, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False, help_text="SHA-256 of the whole token, hex.")
    is_active = models.BooleanField(default=True, help_text="Untick to revoke the token.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name}, {self.user})"
