"""The camera page in a real browser: Debian's Chromium with its fake camera playing a .y4m the
test writes from LFW photos (an enrolled member on the left, a stranger on the right), against
the live server and the real engine. The page must name the member over the left face and say
"unknown" over the right one; a screenshot is saved under the test's tmp folder.

Skipped, saying why, when /usr/bin/chromium or the playwright package is missing
(``playwright install`` is never needed: the system browser is used).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.test_browser import ARGS, CHROMIUM
from tests.fakes import lfw_photos

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WIDTH, HEIGHT = 640, 480


@pytest.fixture(scope="module", autouse=True)
def _allow_orm_beside_playwright():
    # Playwright's sync API runs an event loop in this thread; the ORM calls of the test are safe.
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if saved is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


def write_y4m(path: Path, rgb: np.ndarray, frames: int = 10, fps: int = 10) -> Path:
    """A YUV4MPEG2 file (4:2:0) of ``frames`` copies of one RGB picture: what Chromium's fake
    camera plays, in a loop."""
    import cv2

    height, width = rgb.shape[:2]
    planes = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes()  # Y, then U, then V
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n")
            out.write(planes)
    return path


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    canvas = np.full((HEIGHT, WIDTH, 3), 80, np.uint8)
    for photo, x in ((left, 40), (right, 350)):
        h, w = photo.shape[:2]
        canvas[115 : 115 + h, x : x + w] = photo
    return canvas


def _launch(args: list[str]):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (make sysdeps)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -r requirements-dev.txt)")
    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS + args, headless=True)
    return playwright, browser


def _log_in(page, live_server, django_user_model) -> None:
    password = secrets.token_urlsafe(12)
    django_user_model.objects.create_user("camera", password=password)
    page.goto(live_server.url + "/accounts/login/?next=/camera/")
    page.get_by_label("Username").fill("camera")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(live_server.url + "/camera/")


def test_the_camera_names_the_member_and_marks_the_stranger_unknown(
    live_server, real_recognizer, lfw_dir, tmp_path, django_user_model
):
    from faceengine.images import load_image
    from members.services import member_create

    photos = lfw_photos(lfw_dir, "Colin_Powell")
    member_create(display_name="Colin Powell", photos=photos[:5])
    member_create(display_name="Tony Blair", photos=lfw_photos(lfw_dir, "Tony_Blair")[:5])
    picture = side_by_side(load_image(photos[8]), load_image(lfw_photos(lfw_dir, "Gerhard_Schroeder")[0]))
    y4m = write_y4m(tmp_path / "camera.y4m", picture)

    playwright, browser = _launch(
        [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={y4m}",
        ]
    )
    try:
        context = browser.new_context(viewport={"width": 900, "height": 800})
        page = context.new_page()
        page.set_default_timeout(60_000)
        _log_in(page, live_server, django_user_model)
        page.wait_for_selector("#camera-faces li.face.known", timeout=120_000)
        page.wait_for_selector("#camera-faces li.face.unknown", timeout=60_000)
        known = page.locator("#camera-faces li.face.known")
        unknown = page.locator("#camera-faces li.face.unknown")
        assert known.count() == 1 and unknown.count() == 1
        assert known.inner_text().startswith("Colin Powell ")
        assert unknown.inner_text().startswith("unknown")
        # The name is over the left face (the member's), "unknown" over the right one.
        assert float(known.get_attribute("data-x")) < WIDTH / 2 < float(unknown.get_attribute("data-x"))
        # The boxes are drawn on the canvas over the video, which is the camera's size.
        size = page.evaluate(
            "[document.getElementById('camera-overlay').width, document.getElementById('camera-video').videoWidth]"
        )
        assert size == [WIDTH, WIDTH]
        assert page.locator("#camera-message").is_hidden()
        page.screenshot(path=str(tmp_path / "camera.png"), full_page=True)
        assert (tmp_path / "camera.png").stat().st_size > 10_000

        # Pause stops sending: the count of answered frames stays where it was.
        page.get_by_role("button", name="Pause").click()
        page.wait_for_timeout(600)  # the frames already on their way come back
        before = page.locator("#camera-stats").inner_text()
        page.wait_for_timeout(1500)
        assert page.locator("#camera-stats").inner_text() == before
        assert page.get_by_role("button", name="Resume").is_visible()
        context.close()
    finally:
        browser.close()
        playwright.stop()


def test_a_denied_camera_gets_a_clear_message(live_server, tmp_path, django_user_model):
    # No fake camera and no auto-accept: the (headless) browser refuses getUserMedia.
    playwright, browser = _launch(["--deny-permission-prompts"])
    try:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(30_000)
        _log_in(page, live_server, django_user_model)
        message = page.locator("#camera-message")
        message.wait_for(state="visible")
        text = message.inner_text()
        assert "denied the camera" in text or "No camera was found" in text
        assert page.get_by_role("button", name="Pause").is_disabled()
        context.close()
    finally:
        browser.close()
        playwright.stop()


def write_webm(path: Path, segments: list[tuple[np.ndarray, int, float]], fps: int = 10) -> Path:
    """A WebM (VP8, which Chromium plays) of (RGB photo, x, seconds) segments, 640x480."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"VP80"), fps, (WIDTH, HEIGHT))
    assert writer.isOpened(), "OpenCV cannot write WebM here"
    for photo, x, seconds in segments:
        frame = np.full((HEIGHT, WIDTH, 3), 80, np.uint8)
        h, w = photo.shape[:2]
        frame[115 : 115 + h, x : x + w] = photo[:, :, ::-1]
        for _ in range(round(seconds * fps)):
            writer.write(frame)
    writer.release()
    return path


def test_the_video_page_lists_who_appears_and_a_click_seeks_to_the_moment(
    live_server, real_recognizer, eager_celery, lfw_dir, tmp_path, django_user_model
):
    from faceengine.images import load_image
    from members.services import member_create

    powell, blair = lfw_photos(lfw_dir, "Colin_Powell"), lfw_photos(lfw_dir, "Tony_Blair")
    member_create(display_name="Colin Powell", photos=powell[:5])
    member_create(display_name="Tony Blair", photos=blair[:5])
    stranger = load_image(lfw_photos(lfw_dir, "Gerhard_Schroeder")[0])
    video = write_webm(
        tmp_path / "visit.webm",
        [(load_image(powell[8]), 40, 2.0), (load_image(blair[8]), 350, 2.0), (stranger, 195, 2.0)],
    )

    playwright, browser = _launch([])
    try:
        context = browser.new_context(viewport={"width": 900, "height": 900})
        page = context.new_page()
        page.set_default_timeout(60_000)
        _log_in(page, live_server, django_user_model)
        page.goto(live_server.url + "/videos/")
        page.set_input_files("#id_video", str(video))
        page.get_by_role("button", name="Upload").click()
        page.wait_for_url("**/videos/*/", timeout=180_000)  # the job ran inside the upload (eager)
        page.wait_for_function("document.getElementById('video-status').textContent === 'Done'")
        # The server renders the badge already 'Done'; wait for the script to draw the timeline.
        page.wait_for_function("document.getElementById('timeline').dataset.rendered === 'done'")
        entries = page.locator("#timeline li button")
        assert entries.count() == 3
        texts = [entries.nth(i).inner_text() for i in range(3)]
        assert texts[0].startswith("Colin Powell · 0:00.0") and texts[1].startswith("Tony Blair · 0:02.0")
        assert texts[2].startswith("unknown · 0:04.0")
        assert page.locator("#timeline img").count() == 3
        # Thumbnails load after the timeline is drawn: wait until every one has decoded.
        page.wait_for_function(
            "Array.from(document.querySelectorAll('#timeline img'))"
            ".every((img) => img.complete && img.naturalWidth > 0)"
        )
        page.wait_for_function("document.getElementById('video-player').readyState >= 1")
        entries.nth(1).click()
        page.wait_for_function("Math.abs(document.getElementById('video-player').currentTime - 2.0) < 0.5")
        page.screenshot(path=str(tmp_path / "video.png"), full_page=True)
        context.close()
    finally:
        browser.close()
        playwright.stop()
