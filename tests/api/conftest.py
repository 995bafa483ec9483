"""Fixtures of the API tests: users with and without the member permissions, their tokens,
clients, the real engine and the shared LFW photos, a media root per test."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.services import token_create
from members import selectors

MEMBER_PERMS = ("view_member", "add_member", "change_member", "delete_member")


@pytest.fixture(autouse=True)
def _own_media_root(media_root) -> Path:
    """Every test writes its photos into its own folder (tests/conftest.py), never the real one."""
    return media_root


@pytest.fixture(autouse=True)
def fresh_state():
    # The throttle counts live in the cache; the gallery index is cached per process.
    cache.clear()
    selectors.clear_gallery_cache()
    yield
    cache.clear()
    selectors.clear_gallery_cache()


def _client(token: str | None = None) -> APIClient:
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def manager(django_user_model):
    user = django_user_model.objects.create_user("manager", password="pw-manager-1")
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="members",
                                                         codename__in=MEMBER_PERMS))
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


@pytest.fixture(scope="session")
def real_recognizer():
    from faceengine.model_fetch import is_installed
    from facesite.engine import active_model_spec, get_recognizer

    spec = active_model_spec()
    if not is_installed(spec, django_settings.FACESITE_MODEL_DIR):
        pytest.skip(f"The default model is not in {django_settings.FACESITE_MODEL_DIR}: run `manage.py fetch_models`")
    return get_recognizer()


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    path = Path(django_settings.FACESITE_TEST_DATA) / "lfw" / "lfw-deepfunneled"
    if not path.is_dir():
        pytest.skip(f"LFW photos not found at {path}: set FACESITE_TEST_DATA to the shared faces folder")
    return path


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
