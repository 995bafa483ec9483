"""Tokens (hashed, shown once), authentication, permissions, rate limits, the schema pages."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from accounts.models import ApiToken
from accounts.services import token_create, token_revoke

from .conftest import _client, error_code

pytestmark = pytest.mark.django_db

MEMBERS = "/api/v1/members"


def test_tokens_are_stored_hashed(manager):
    row, plaintext = token_create(user=manager, name="script")
    assert plaintext.startswith("fst_") and row.prefix in plaintext
    stored = ApiToken.objects.get(pk=row.pk)
    assert stored.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext not in {getattr(stored, f.attname) for f in ApiToken._meta.concrete_fields}


def test_create_api_token_command(manager):
    out = io.StringIO()
    call_command("create_api_token", "manager", "--name", "cli", stdout=out)
    plaintext = out.getvalue().strip()
    response = _client(plaintext).get(MEMBERS)
    assert response.status_code == 200
    assert ApiToken.objects.get(user=manager, name="cli").last_used_at is not None


def test_create_api_token_command_unknown_user(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("create_api_token", "nobody")


@pytest.mark.parametrize("header", [None, "Token fst_nothing", "Token fst_12345678_wrong", "Token a b", "Basic abc"])
def test_missing_or_bad_credentials_are_401(header, manager_token):
    from rest_framework.test import APIClient

    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(MEMBERS)
    assert response.status_code == 401
    assert error_code(response) in ("not_authenticated", "authentication_failed")
    assert response["WWW-Authenticate"].startswith("Token")


def test_a_tampered_token_with_a_real_prefix_is_401(manager_token):
    response = _client(manager_token[:-3] + "xyz").get(MEMBERS)
    assert response.status_code == 401 and error_code(response) == "authentication_failed"


def test_a_revoked_token_is_401(manager, manager_token, api):
    assert api.get(MEMBERS).status_code == 200
    token_revoke(token=ApiToken.objects.get(user=manager))
    assert api.get(MEMBERS).status_code == 401


def test_recognising_needs_a_token(anon_api):
    response = anon_api.post("/api/v1/detect", {"image": "aGVsbG8="}, format="json")
    assert response.status_code == 401 and error_code(response) == "not_authenticated"


def test_a_token_without_the_permission_cannot_change_members(reader_api, api):
    member = api.post(MEMBERS, {"display_name": "Kept"}, format="json").json()["member"]
    url = f"{MEMBERS}/{member['id']}"
    attempts = [
        reader_api.get(MEMBERS),
        reader_api.post(MEMBERS, {"display_name": "Intruder"}, format="json"),
        reader_api.get(url),
        reader_api.patch(url, {"display_name": "Changed"}, format="json"),
        reader_api.put(url, {"display_name": "Changed"}, format="json"),
        reader_api.delete(url),
        reader_api.post(f"{url}/faces", {"photos": ["aGVsbG8="]}, format="json"),
        reader_api.delete(f"{url}/faces/1"),
        reader_api.post(f"{MEMBERS}/bulk", {}, format="multipart"),
    ]
    for response in attempts:
        assert response.status_code == 403, (response.request, response.content)
        assert error_code(response) == "permission_denied"
    assert api.get(url).json()["display_name"] == "Kept"
    assert api.get(MEMBERS).json()["count"] == 1


def test_change_permission_alone_cannot_delete(reader, reader_api, api):
    from django.contrib.auth.models import Permission

    reader.user_permissions.add(Permission.objects.get(codename="change_member"))
    member = api.post(MEMBERS, {"display_name": "Kept"}, format="json").json()["member"]
    url = f"{MEMBERS}/{member['id']}"
    assert reader_api.patch(url, {"notes": "ok"}, format="json").status_code == 200
    assert reader_api.delete(url).status_code == 403


def test_the_session_of_the_pages_works(client, manager):
    client.force_login(manager)
    assert client.get(MEMBERS).status_code == 200


def test_rate_limited_per_token(settings, api, reader_api):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api": "3/min", "engine": "2/min"}}
    for _ in range(3):
        assert api.get(MEMBERS).status_code == 200
    response = api.get(MEMBERS)
    assert response.status_code == 429 and error_code(response) == "rate_limited"
    assert int(response["Retry-After"]) > 0
    # Another token has its own budget.
    assert reader_api.get(MEMBERS).status_code == 403


def test_engine_calls_have_their_own_stricter_rate(settings, api):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api": "100/min", "engine": "1/min"},
    }
    first = api.post("/api/v1/detect", {"image": "bm90IGFuIGltYWdl"}, format="json")
    assert first.status_code == 415
    second = api.post("/api/v1/detect", {"image": "bm90IGFuIGltYWdl"}, format="json")
    assert second.status_code == 429
    assert api.get(MEMBERS).status_code == 200  # reads are not engine calls


def test_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    spec = schema.json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path in (
        "/api/v1/recognize",
        "/api/v1/jobs/{job_id}",
        "/api/v1/detect",
        "/api/v1/embeddings",
        "/api/v1/verify",
        "/api/v1/members",
        "/api/v1/members/{member_id}",
        "/api/v1/members/{member_id}/faces",
        "/api/v1/members/{member_id}/faces/{face_id}",
        "/api/v1/members/bulk",
    ):
        assert path in paths, path
    assert "apiToken" in spec["components"]["securitySchemes"]
    docs = client.get(reverse("api-docs"))
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_unknown_method_is_json(api):
    response = api.delete("/api/v1/detect")
    assert response.status_code == 405 and error_code(response) == "method_not_allowed"


def test_admin_creates_a_token_and_shows_it_once(client, django_user_model, manager):
    admin_user = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-1")
    client.force_login(admin_user)
    response = client.post("/admin/accounts/apitoken/add/", {"user": manager.pk, "name": "from admin"}, follow=True)
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    plaintext = next(word for m in shown for word in m.split() if word.startswith("fst_"))
    row = ApiToken.objects.get(name="from admin")
    assert row.user == manager and row.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert _client(plaintext).get(MEMBERS).status_code == 200
    page = client.get(f"/admin/accounts/apitoken/{row.pk}/change/")
    assert page.status_code == 200 and plaintext.encode() not in page.content
