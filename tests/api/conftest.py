"""Fixtures of the API tests: users with and without the member permissions, their tokens,
clients, and a few LFW photos (the shared fixtures are in tests/conftest.py)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from accounts.services import token_create

MEMBER_PERMS = ("view_member", "add_member", "change_member", "delete_member")


def _client(token: str | None = None) -> APIClient:
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def manager(django_user_model):
    user = django_user_model.objects.create_user("manager", password="pw-manager-1")
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="members", codename__in=MEMBER_PERMS))
    return user


@pytest.fixture
def reader(django_user_model):
    """Authenticated, may recognise, but holds no member permission."""
    return django_user_model.objects.create_user("reader", password="pw-reader-1")


@pytest.fixture
def manager_token(manager) -> str:
    return token_create(user=manager, name="tests")[1]


@pytest.fixture
def reader_token(reader) -> str:
    return token_create(user=reader, name="tests")[1]


@pytest.fixture
def api(manager_token) -> APIClient:
    """A client whose token may do everything."""
    return _client(manager_token)


@pytest.fixture
def reader_api(reader_token) -> APIClient:
    return _client(reader_token)


@pytest.fixture
def anon_api() -> APIClient:
    return _client()


@pytest.fixture
def photos(lfw_dir, real_recognizer):
    """name -> sorted list of LFW photo paths (the engine is loaded)."""
    return {name: sorted((lfw_dir / name).glob("*.jpg")) for name in ("Colin_Powell", "Tony_Blair", "Hugo_Chavez")}


def grey_png(size=(200, 200)) -> bytes:
    """A readable photo without a face."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (128, 128, 128)).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(path_or_bytes, name: str = "photo.jpg"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = Path(path_or_bytes).read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def error_code(response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["message"], body
    return body["error"]["code"]
