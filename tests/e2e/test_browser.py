"""The site in a real browser: Debian's Chromium driven by Playwright against the live server.

Log in, upload a group photo, wait for the worker (eager Celery here), check the boxes and the
known name on the page, and save screenshots under artifacts/. Skipped, saying why, when
/usr/bin/chromium or the playwright package is missing (``make sysdeps`` installs Chromium;
``playwright install`` is never needed: the system browser is used).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from tests.conftest import ROOT, require_file

CHROMIUM = Path(os.environ.get("FACESITE_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "artifacts"
GROUP = "samples/face_recognition/examples/knn_examples/test/obama_and_biden.jpg"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module", autouse=True)
def _allow_orm_beside_playwright():
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls from the test
    # are safe. Set for this module only: it must not leak into the rest of the session.
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if saved is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (make sysdeps)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -r requirements-dev.txt)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def obama(media_root):
    from django.conf import settings

    from faceengine.model_fetch import is_installed
    from facesite.engine import active_model_spec
    from members.services import member_create

    if not is_installed(active_model_spec(), settings.FACESITE_MODEL_DIR):
        pytest.skip(f"The default model is not in {settings.FACESITE_MODEL_DIR}: run `manage.py fetch_models`")
    portrait = require_file("samples/face_recognition/examples/obama.jpg")
    return member_create(display_name="Barack Obama", photos=[portrait]).member


def test_log_in_upload_and_see_who_is_in_the_photo(browser, live_server, eager_celery, obama, django_user_model):
    password = secrets.token_urlsafe(12)
    django_user_model.objects.create_user("tester", password=password)
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)

    page.goto(live_server.url + "/")
    assert "/accounts/login/" in page.url
    page.get_by_label("Username").fill("tester")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(live_server.url + "/")

    # Something that is not a photo gets a clear message and no job.
    page.set_input_files("#id_photos", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hi"}])
    assert "notes.txt is not a photo" in page.locator(".upload.failed .note").first.inner_text()

    page.set_input_files("#id_photos", require_file(GROUP))
    page.locator("a.job-link").first.click(timeout=60_000)
    page.wait_for_function("document.getElementById('job-status').textContent === 'Done'", timeout=180_000)

    boxes = page.locator("#overlay g.face")
    assert boxes.count() == 3
    assert page.locator("#overlay g.face.known").count() == 1
    assert "Barack Obama" in page.locator("#overlay g.face.known text").text_content()
    assert page.locator("#overlay g.face.unknown").count() == 2
    rows = page.locator("#faces-body tr")
    assert rows.count() == 3 and "Barack Obama" in page.locator("#faces-body tr.known").inner_text()
    assert "3 face(s), 1 known" in page.locator("#job-summary").inner_text()
    # The boxes sit on the photo: the overlay covers the image exactly.
    image, overlay = page.locator("#photo-img").bounding_box(), page.locator("#overlay").bounding_box()
    assert abs(image["width"] - overlay["width"]) < 1 and abs(image["height"] - overlay["height"]) < 1
    page.screenshot(path=str(ARTIFACTS / "e2e-job.png"), full_page=True)

    # A phone-width screen: nothing sticks out sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_function("document.getElementById('job-status').textContent === 'Done'")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(ARTIFACTS / "e2e-job-phone.png"), full_page=True)

    page.goto(live_server.url + "/jobs/")
    assert page.locator("table.jobs tbody tr").count() == 1
    context.close()
