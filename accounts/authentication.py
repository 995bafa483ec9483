"""DRF authentication and throttling by API token: ``Authorization: Token fst_...`` (or ``Bearer``)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import authentication, exceptions, throttling

from .services import token_authenticate

KEYWORDS = (b"token", b"bearer")


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """``request.user`` is the token's user and ``request.auth`` the ApiToken row."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() not in KEYWORDS:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("The Authorization header must be 'Token <token>'.")
        try:
            plaintext = header[1].decode("ascii")
        except UnicodeError:
            raise exceptions.AuthenticationFailed("The token is not valid.") from None
        row = token_authenticate(plaintext=plaintext)
        if row is None or not row.user.is_active:
            raise exceptions.AuthenticationFailed("The token is not valid or has been revoked.")
        return row.user, row

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (with WWW-Authenticate) rather than 403 when credentials are missing.
        return 'Token realm="api"'


class TokenRateThrottle(throttling.SimpleRateThrottle):
    """A rate per token (per user for the session, per address for anonymous calls).

    ``scope`` picks the rate from settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], read at
    each request (not at import), so tests and deployments can change it.
    """

    scope = "api"

    def get_rate(self):
        rates = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {})
        return rates.get(self.scope)

    def __init__(self):
        # SimpleRateThrottle reads the rate in __init__ from a class attribute bound at import.
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def get_cache_key(self, request, view):
        token = getattr(request, "auth", None)
        if token is not None and getattr(token, "pk", None):
            ident = f"token-{token.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"addr-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class EngineRateThrottle(TokenRateThrottle):
    """The stricter rate of the calls that run the engine (recognise, detect, enrol...)."""

    scope = "engine"

    def allow_request(self, request, view):
        if not getattr(view, "uses_engine", False):
            return True
        return super().allow_request(request, view)
