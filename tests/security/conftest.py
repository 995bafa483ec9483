"""Fixtures of the security tests: a media root per test, fresh throttle counts, users with and
without the member permissions, and photos built here (real JPEG/PNG bytes, forged headers)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from accounts.services import token_create
from tests.fakes import face_photo  # noqa: F401  (re-exported for the security tests)

PASSWORD = "pw-correct-horse-1"


def make_user(username: str, *, perms: tuple[str, ...] = (), **extra):
    user = get_user_model().objects.create_user(username, password=PASSWORD, **extra)
    if perms:
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label="members", codename__in=perms))
    return user


def api_for(user) -> APIClient:
    _, token = token_create(user=user, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def manager():
    return make_user("manager", perms=("view_member", "add_member", "change_member", "delete_member"))


@pytest.fixture
def manager_api(manager) -> APIClient:
    return api_for(manager)


def jpeg_bytes(size=(320, 240), seed: int = 0, quality: int = 90) -> bytes:
    """A real JPEG (noise, so it does not compress to nothing)."""
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height: a decompression bomb's calling card."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    # IHDR starts at byte 8: length(4) "IHDR"(4) width(4) height(4) ... CRC over type+data.
    ihdr = bytes(data[12:16]) + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr) & 0xFFFFFFFF)
    return bytes(data)


def media_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
