"""Log-in throttling (accounts.login_throttle): after LOGIN_THROTTLE_ATTEMPTS failures for a
username, or LOGIN_THROTTLE_IP_ATTEMPTS from one address, further attempts are refused for
LOGIN_THROTTLE_WINDOW seconds even with the right password, on /accounts/login/ and on
/admin/login/ alike; the window ends by itself; settings come from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from django.contrib.auth import authenticate
from django.test import Client
from django.urls import reverse

from .conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db

LOGIN_URLS = {"pages": "login", "admin": "admin:login"}


@pytest.fixture(autouse=True)
def limits(settings):
    settings.LOGIN_THROTTLE_ATTEMPTS = 3
    settings.LOGIN_THROTTLE_IP_ATTEMPTS = 5
    settings.LOGIN_THROTTLE_WINDOW = 600
    settings.LOGIN_THROTTLE_TRUST_X_FORWARDED_FOR = False


def attempt(url_name: str, username: str, password: str, address: str = "10.0.0.1"):
    client = Client(REMOTE_ADDR=address)
    response = client.post(reverse(url_name), {"username": username, "password": password})
    return response, "_auth_user_id" in client.session


@pytest.mark.parametrize("door", sorted(LOGIN_URLS))
def test_per_username_even_with_the_right_password(door):
    make_user("alice", is_staff=True)
    url = LOGIN_URLS[door]
    assert attempt(url, "alice", PASSWORD)[1]  # works at first
    for i in range(3):
        response, logged_in = attempt(url, "alice", f"guess-{i}", address=f"10.0.1.{i}")
        assert not logged_in and "Too many" not in response.content.decode()
    # Locked: from yet another address, with the right password.
    response, logged_in = attempt(url, "alice", PASSWORD, address="10.0.2.1")
    assert not logged_in
    assert "Too many failed log-in attempts; try again in 10 minutes." in response.content.decode()
    if door == "pages":
        assert response.status_code == 429
    # Usernames are counted case-blind, so "ALICE" does not open a second window of guesses.
    assert not attempt(url, "ALICE", PASSWORD, address="10.0.2.2")[1]
    # Someone else is not affected.
    make_user("bob", is_staff=True)
    assert attempt(url, "bob", PASSWORD, address="10.0.2.3")[1]


def test_the_two_doors_share_the_count():
    make_user("alice", is_staff=True)
    attempt("login", "alice", "x1")
    attempt("admin:login", "alice", "x2")
    attempt("login", "alice", "x3")
    assert not attempt("admin:login", "alice", PASSWORD, address="10.9.9.9")[1]


@pytest.mark.parametrize("door", sorted(LOGIN_URLS))
def test_per_address(door):
    make_user("carol", is_staff=True)
    url = LOGIN_URLS[door]
    for i in range(5):  # five different usernames from one address: under each user's limit
        attempt(url, f"user{i}", "wrong", address="192.0.2.7")
    response, logged_in = attempt(url, "carol", PASSWORD, address="192.0.2.7")
    assert not logged_in and "Too many" in response.content.decode()
    assert attempt(url, "carol", PASSWORD, address="192.0.2.8")[1]  # another address is fine


def test_forwarded_address_only_when_trusted(settings):
    make_user("dave")
    for i in range(5):
        Client(REMOTE_ADDR="10.0.0.254", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").post(
            reverse("login"), {"username": f"u{i}", "password": "wrong"}
        )
    # Untrusted: every caller is the proxy's address, which is now locked.
    client = Client(REMOTE_ADDR="10.0.0.254", HTTP_X_FORWARDED_FOR="203.0.113.99")
    client.post(reverse("login"), {"username": "dave", "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    settings.LOGIN_THROTTLE_TRUST_X_FORWARDED_FOR = True
    client.post(reverse("login"), {"username": "dave", "password": PASSWORD})
    assert "_auth_user_id" in client.session  # counted by the client's own address now


def test_success_clears_the_username_count():
    make_user("erin")
    for _ in range(2):
        attempt("login", "erin", "wrong")
    assert attempt("login", "erin", PASSWORD)[1]
    for _ in range(2):
        attempt("login", "erin", "wrong")
    assert attempt("login", "erin", PASSWORD)[1]  # 2 + 2 failures, but never 3 in a row


def test_enforced_for_every_caller_of_authenticate():
    """The backend refuses too, so a log-in path that forgets the form is still throttled."""
    user = make_user("frank")
    for _ in range(3):
        assert authenticate(None, username="frank", password="wrong") is None
    assert authenticate(None, username="frank", password=PASSWORD) is None
    assert user.check_password(PASSWORD)


def test_the_window_ends(settings):
    settings.LOGIN_THROTTLE_WINDOW = 1
    make_user("gina")
    for _ in range(3):
        attempt("login", "gina", "wrong")
    assert not attempt("login", "gina", PASSWORD)[1]
    time.sleep(1.2)
    assert attempt("login", "gina", PASSWORD)[1]


def test_settings_come_from_the_environment():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "facesite.settings.test",
        "LOGIN_THROTTLE_ATTEMPTS": "7",
        "LOGIN_THROTTLE_WINDOW": "42",
        "LOGIN_THROTTLE_IP_ATTEMPTS": "70",
    }
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.LOGIN_THROTTLE_ATTEMPTS, s.LOGIN_THROTTLE_WINDOW, s.LOGIN_THROTTLE_IP_ATTEMPTS, "
        "s.AUTHENTICATION_BACKENDS)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(maxsplit=3)[:3] == ["7", "42", "70"]
    assert "accounts.backends.ThrottledModelBackend" in out.stdout
