"""Log-in throttling: after too many failed log-ins for a username, or from an address, every
further attempt is refused for a window, even with the right password.

Counts live in Django's cache (set FACESITE_CACHE_URL to Redis when several processes serve, so
they share the counts). A window starts at the first failure and is fixed: failing again while
locked out does not extend it, so a locked-out user knows when to come back. A successful log-in
clears the username's count but never the address's: an attacker cannot reset the count for an
address by logging into an account of their own.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

PREFIX = "login-throttle"


@dataclass(frozen=True)
class Refusal:
    """Why log-ins are refused now, and for how many more seconds."""

    scope: str  # "username" or "address"
    retry_after: int

    @property
    def message(self) -> str:
        minutes = max(1, -(-self.retry_after // 60))
        return f"Too many failed log-in attempts; try again in {minutes} minute{'s' if minutes != 1 else ''}."


def _limits() -> dict[str, int]:
    return {"username": int(settings.LOGIN_THROTTLE_ATTEMPTS), "address": int(settings.LOGIN_THROTTLE_IP_ATTEMPTS)}


def _window() -> int:
    return int(settings.LOGIN_THROTTLE_WINDOW)


def client_address(request: HttpRequest | None) -> str | None:
    """The caller's address: REMOTE_ADDR, or the last X-Forwarded-For hop (the one our own proxy
    added) when LOGIN_THROTTLE_TRUST_X_FORWARDED_FOR says a trusted proxy is in front."""
    if request is None:
        return None
    if settings.LOGIN_THROTTLE_TRUST_X_FORWARDED_FOR:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if forwarded and forwarded[-1]:
            return forwarded[-1][:64]
    return (request.META.get("REMOTE_ADDR") or "")[:64] or None


def _keys(username: str | None, address: str | None) -> dict[str, str]:
    keys = {}
    if username:
        # Hashed: the cache never holds a username in clear, and any length or character is fine.
        digest = hashlib.sha256(username.strip().lower().encode("utf-8")).hexdigest()
        keys["username"] = f"{PREFIX}:user:{digest}"
    if address:
        keys["address"] = f"{PREFIX}:addr:{address}"
    return keys


def login_refusal(*, username: str | None, address: str | None) -> Refusal | None:
    """A Refusal when the username or the address has used up its attempts in this window."""
    limits, now = _limits(), time.time()
    for scope, key in _keys(username, address).items():
        count = cache.get(f"{key}:count") or 0
        if limits[scope] > 0 and count >= limits[scope]:
            since = cache.get(f"{key}:since") or now
            return Refusal(scope=scope, retry_after=max(1, int(since + _window() - now)))
    return None


def login_failure_record(*, username: str | None, address: str | None) -> None:
    """Count one failed log-in for the username and for the address."""
    window = _window()
    for key in _keys(username, address).values():
        # add() is a no-op when the window is already open: the first failure fixes its end.
        if cache.add(f"{key}:since", time.time(), window):
            cache.set(f"{key}:count", 0, window)
        try:
            cache.incr(f"{key}:count")
        except ValueError:  # expired between the two calls: start a new window
            cache.set(f"{key}:count", 1, window)


def login_success_record(*, username: str | None) -> None:
    """Clear the username's failures (never the address's)."""
    for key in _keys(username, None).values():
        cache.delete_many([f"{key}:count", f"{key}:since"])
