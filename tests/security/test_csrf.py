"""CSRF on every form: each POST form in templates/ carries the token; every page URL pattern
(enumerated from the URLconf) refuses a POST without the token (403) and accepts one with it;
the admin's forms likewise; the API refuses a session-authenticated POST without the token."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from members import services as member_services
from members.models import Member
from recognition.services import job_create
from tests.fakes import face_photo

from .conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "templates"
# Views that take no browser POST on purpose: load-balancer probes (GET only, change nothing).
NO_POST_FORMS = {"healthz", "readyz"}


def page_patterns(resolver=None, prefix: str = ""):
    """(route, name) of every URL pattern outside the admin and the API (tested on their own)."""
    for pattern in (resolver or get_resolver()).url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            if not route.startswith(("admin/", "api/")):
                yield from page_patterns(pattern, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern.name


class Forms(HTMLParser):
    """The POST forms of a page and the names of their inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._current: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and (attrs.get("method") or "get").lower() == "post":
            self._current = {"action": attrs.get("action"), "inputs": set()}
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None:
            self._current["inputs"].add(attrs.get("name"))

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def post_forms(html: str) -> list[dict]:
    parser = Forms()
    parser.feed(html)
    return parser.forms


def test_every_post_form_in_the_templates_has_the_token():
    forms = 0
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        for match in re.finditer(r"<form\b[^>]*>(.*?)</form>", text, re.S | re.I):
            if re.search(r"method\s*=\s*[\"']?post", match.group(0)[: match.group(0).find(">")], re.I):
                forms += 1
                assert "{% csrf_token %}" in match.group(1), f"{path.relative_to(TEMPLATES)}: {match.group(0)[:80]}"
    assert forms >= 5  # log-in, log-out, upload, enrolment, "this is ..."


@pytest.fixture
def world(fake_engine, settings):
    """A superuser who owns a finished job, a member with a face: every page has something to show."""
    from recognition.services import job_run

    settings.FACESITE_GALLERY = {**settings.FACESITE_GALLERY, "IDENTIFICATION_THRESHOLD": 0.9}
    user = make_user("root", is_staff=True, is_superuser=True)
    job = job_create(user=user, upload=face_photo("red"))
    job_run(job_id=job.pk)
    member = member_services.member_create(display_name="Ada", photos=[face_photo("blue")]).member
    kwargs = {
        "job_id": job.pk,
        "member_id": member.pk,
        "face_id": member.faces.get().pk,
        "face_index": 0,
        "uidb64": "MQ",
        "token": "set-password",
    }
    return user, kwargs


def url_for(route: str, name: str, kwargs: dict) -> str:
    wanted = {key: kwargs[key] for key in re.findall(r"<(?:\w+:)?(\w+)>", route)}
    return reverse(name, kwargs=wanted)


def test_every_page_refuses_a_post_without_the_token(world):
    user, kwargs = world
    checked, forms_seen = [], 0
    for route, name in page_patterns():
        if name in NO_POST_FORMS:
            continue
        url = url_for(route, name, kwargs)
        client = Client(enforce_csrf_checks=True)
        client.force_login(user)
        page = client.get(url)
        if page.status_code == 200 and page["Content-Type"].startswith("text/html"):
            for form in post_forms(page.content.decode()):
                forms_seen += 1
                assert "csrfmiddlewaretoken" in form["inputs"], (url, form)
        refused = client.post(url, {"member": kwargs["member_id"]})
        assert refused.status_code == 403 and b"CSRF" in refused.content, (url, refused.status_code)
        token = client.cookies["csrftoken"].value if "csrftoken" in client.cookies else None
        if token is None:  # a page without a form sets no cookie: take one from the upload page
            token = (client.get(reverse("home")), client.cookies["csrftoken"].value)[1]
        allowed = client.post(url, {"member": kwargs["member_id"], "csrfmiddlewaretoken": token})
        assert allowed.status_code != 403, (url, allowed.status_code)
        checked.append(name)
    assert {"login", "logout", "home", "member-enrol", "job-face-enrol", "member-detail"} <= set(checked)
    assert forms_seen >= 4


def test_the_login_forms_refuse_a_post_without_the_token():
    make_user("carol", is_staff=True)  # the admin lets staff in only
    for url in (reverse("login"), reverse("admin:login")):
        client = Client(enforce_csrf_checks=True)
        forms = post_forms(client.get(url).content.decode())
        assert forms and all("csrfmiddlewaretoken" in form["inputs"] for form in forms)
        refused = client.post(url, {"username": "carol", "password": PASSWORD})
        assert refused.status_code == 403 and "_auth_user_id" not in client.session
        token = client.cookies["csrftoken"].value
        client.post(url, {"username": "carol", "password": PASSWORD, "csrfmiddlewaretoken": token})
        assert "_auth_user_id" in client.session  # the same post with the token logs in


def test_admin_forms_carry_the_token_and_refuse_without_it(world):
    user, kwargs = world
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    for url in (
        reverse("admin:members_member_add"),
        reverse("admin:members_member_change", args=[kwargs["member_id"]]),
        reverse("admin:accounts_apitoken_add"),
        reverse("admin:members_member_delete", args=[kwargs["member_id"]]),
    ):
        forms = post_forms(client.get(url).content.decode())
        assert forms and all("csrfmiddlewaretoken" in form["inputs"] for form in forms), url
        assert client.post(url, {"display_name": "Mallory", "post": "yes"}).status_code == 403, url
    assert Member.objects.filter(pk=kwargs["member_id"], display_name="Ada").exists()


def test_the_api_refuses_a_session_post_without_the_token(world):
    from rest_framework.test import APIClient

    user, _ = world
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    for url, data in (
        ("/api/v1/members", {"display_name": "Mallory"}),
        ("/api/v1/recognize", {"image": face_photo("red")}),
    ):
        response = client.post(url, data, format="json" if "members" in url else "multipart")
        assert response.status_code == 403 and "CSRF" in response.json()["error"]["message"], url
    assert not Member.objects.filter(display_name="Mallory").exists()
    # A token in the header is not a cookie a browser sends by itself: no CSRF check needed.
    from .conftest import api_for

    assert api_for(user).post("/api/v1/members", {"display_name": "Trent"}, format="json").status_code == 201
