"""API tokens are stored hashed: whichever way a token is made (service, command, admin), no
table holds the plaintext or its secret part; what the database does hold (the prefix and the
hash) does not authenticate; a revoked token stops working."""

from __future__ import annotations

import hashlib
import io
import re

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import token_create, token_revoke

from .conftest import make_user

pytestmark = pytest.mark.django_db


def database_dump() -> str:
    out = io.StringIO()
    call_command("dumpdata", "--all", stdout=out)
    return out.getvalue()


def status(token: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get("/api/v1/members").status_code


def assert_not_stored(plaintext: str) -> None:
    secret = plaintext.split("_", 2)[2]  # fst_<prefix>_<secret>; the secret may hold "_"
    dump = database_dump()
    assert plaintext not in dump and secret not in dump
    row = ApiToken.objects.get(prefix=plaintext.split("_")[1])
    assert row.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()


def test_no_way_of_making_a_token_stores_it(admin_client):
    user = make_user("robot", perms=("view_member",))
    made = [token_create(user=user, name="service")[1]]
    out = io.StringIO()
    call_command("create_api_token", "robot", "--name", "command", stdout=out)
    made.append(out.getvalue().strip())
    response = admin_client.post(
        reverse("admin:accounts_apitoken_add"), {"user": user.pk, "name": "admin"}, follow=True
    )
    shown = re.search(r"fst_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", response.content.decode())
    assert shown, "the admin shows the new token once"
    made.append(shown.group(0))
    assert ApiToken.objects.count() == 3
    for plaintext in made:
        assert status(plaintext) == 200
        assert_not_stored(plaintext)


def test_what_the_database_holds_does_not_authenticate():
    row, plaintext = token_create(user=make_user("robot", perms=("view_member",)))
    assert status(plaintext) == 200
    assert status(row.key_hash) == 401
    assert status(f"fst_{row.prefix}_{row.key_hash}") == 401
    assert status(plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")) == 401
    token_revoke(token=row)
    assert status(plaintext) == 401
