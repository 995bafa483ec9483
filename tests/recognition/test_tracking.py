"""Face tracking (faceengine.tracking) on synthetic boxes, and the tracked recognition of
frames (recognition.tracked) on real LFW photos with the real engine."""

from __future__ import annotations

import time

import numpy as np
import pytest

from faceengine.tracking import KNOWN, PENDING, UNKNOWN, Tracker, TrackerConfig, face_signature, iou
from tests.fakes import lfw_photos

VEC = np.ones(4, np.float32) / 2


def _step(tracker: Tracker, boxes, frame: int, label=None, similarity=0.8):
    """One frame: update, then vote for every face that asks to be embedded."""
    assignments = tracker.update(boxes, frame)
    for a in assignments:
        if a.needs_embedding:
            a.track.record(VEC, label, similarity, frame)
    return assignments


# ------------------------------------------------------------------------------- association


def test_iou_of_boxes():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5]])
    assert iou(a, b)[0] == pytest.approx([1.0, 50 / 150, 0.0])


def test_a_face_that_moves_slowly_keeps_its_track_and_two_faces_keep_theirs():
    tracker = Tracker()
    ids = set()
    for frame in range(30):
        left = [10 + 2 * frame, 50, 60, 60]
        right = [400 - 2 * frame, 60, 50, 50]
        assignments = tracker.update([left, right], frame)
        ids.add((assignments[0].track.id, assignments[1].track.id))
    assert ids == {(1, 2)}


def test_a_fast_face_whose_boxes_barely_overlap_is_matched_by_its_centre():
    tracker = Tracker()
    first = tracker.update([[100, 100, 25, 25]], 0)[0].track
    # Moved 14 px: IoU 0.28, under the 0.3 needed, but the centre is 0.56 widths away (< 0.6).
    assert iou(np.array([[100, 100, 25, 25]]), np.array([[114, 100, 25, 25]]))[0, 0] < 0.3
    moved = tracker.update([[114, 100, 25, 25]], 1)[0].track
    assert moved.id == first.id == 1
    far = tracker.update([[400, 300, 25, 25]], 2)[0].track
    assert far.id != 1


def test_a_track_survives_a_few_missed_frames_then_ends():
    tracker = Tracker(TrackerConfig(max_missed=2))
    tracker.update([[10, 10, 40, 40]], 0)
    tracker.update([], 1)
    tracker.update([], 2)
    assert tracker.update([[12, 10, 40, 40]], 3)[0].track.id == 1  # missed twice: still there
    for frame in range(4, 7):
        tracker.update([], frame)
    assert tracker.update([[12, 10, 40, 40]], 7)[0].track.id == 2  # missed three times: a new one
    ended = tracker.finish()
    assert [t.id for t in ended] == [1, 2]
    assert (ended[0].first_frame, ended[0].last_frame) == (0, 3)


# ------------------------------------------------------------------------------- re-embedding


def test_embedded_while_new_then_only_every_n_frames_or_after_a_big_move():
    config = TrackerConfig(agree=3, window=5, reembed_every=10)
    tracker = Tracker(config)
    asked = [a.needs_embedding for frame in range(25) for a in _step(tracker, [[100, 100, 80, 80]], frame)]
    # Frames 0-2 (new: three votes to settle), then 12 and 22 (every 10 frames).
    assert [i for i, ask in enumerate(asked) if ask] == [0, 1, 2, 12, 22]
    # A big move asks again at once; a small one does not.
    assert not _step(tracker, [[105, 100, 80, 80]], 25)[0].needs_embedding
    assert _step(tracker, [[140, 100, 80, 80]], 26)[0].needs_embedding
    # So does a face that came much closer (its box grew).
    assert _step(tracker, [[130, 90, 120, 120]], 27)[0].needs_embedding


def test_somebody_else_in_the_same_place_is_re_embedded_and_gets_a_track_of_their_own():
    rng = np.random.default_rng(1)
    face_a, face_b = rng.integers(0, 255, (80, 80, 3)), rng.integers(0, 255, (80, 80, 3))
    box = [100, 100, 80, 80]

    def frame_with(face):
        rgb = np.zeros((300, 300, 3), np.uint8)
        rgb[100:180, 100:180] = face
        return rgb

    config = TrackerConfig(agree=2, window=3, reembed_every=100)
    tracker = Tracker(config)
    a_vec, b_vec = np.array([1, 0, 0, 0], np.float32), np.array([0, 1, 0, 0], np.float32)
    for frame in range(4):
        rgb = frame_with(face_a)
        (assignment,) = tracker.update([box], frame, [face_signature(rgb, box)])
        if assignment.needs_embedding:
            tracker.record(assignment.track, a_vec, 1, 0.9, frame)
    assert not assignment.needs_embedding  # settled, still, the same look: no embedding
    rgb = frame_with(face_b)  # a cut: another face where the first one was
    (assignment,) = tracker.update([box], 4, [face_signature(rgb, box)])
    assert assignment.needs_embedding and assignment.track.id == 1
    successor = tracker.record(assignment.track, b_vec, None, 0.1, 4)
    assert successor.id == 2 and list(successor.votes) == [(None, 0.1)]
    first, second = tracker.finish()
    assert (first.id, first.first_frame, first.last_frame, first.overall().label) == (1, 0, 3, 1)
    assert (second.id, second.first_frame, second.last_frame) == (2, 4, 4)


def test_face_signature_is_a_correlation():
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 255, (120, 120, 3)).astype(np.uint8)
    same = face_signature(rgb, [10, 10, 80, 80])
    assert float(same @ same) == pytest.approx(1.0, abs=1e-5)
    assert float(same @ face_signature(rgb, [11, 10, 80, 80])) > 0.8  # a pixel of jitter
    assert abs(float(same @ face_signature(rgb[::-1].copy(), [10, 10, 80, 80]))) < 0.5
    assert face_signature(rgb, [115, 115, 3, 3]).shape == (64,)  # a box at the edge, tiny


# ------------------------------------------------------------------------------- identity


def test_a_name_only_once_the_track_agrees_over_k_frames():
    tracker = Tracker(TrackerConfig(agree=3, window=5, reembed_every=1))
    box = [[100, 100, 80, 80]]
    states = []
    for frame, label in enumerate([None, 7, 7, 7, None, 7]):
        track = _step(tracker, box, frame, label=label, similarity=0.5 if label else 0.2)[0].track
        states.append((track.identity.state, track.identity.label))
    assert states == [
        (PENDING, None),  # one vote for nobody
        (PENDING, None),  # one each
        (PENDING, None),  # 7 twice: not yet
        (KNOWN, 7),  # 7 three times of four
        (KNOWN, 7),  # one disagreeing frame does not flip it
        (KNOWN, 7),
    ]
    assert track.identity.similarity == pytest.approx(0.5)


def test_one_lucky_frame_never_names_a_stranger():
    tracker = Tracker(TrackerConfig(agree=3, window=5, reembed_every=1))
    labels = [None, None, 9, None, None, None, 9, None]
    seen = set()
    for frame, label in enumerate(labels):
        track = _step(tracker, [[50, 50, 60, 60]], frame, label=label)[0].track
        seen.add(track.identity.state)
    assert seen == {PENDING, UNKNOWN}
    assert track.overall().state == UNKNOWN


def test_overall_identity_of_a_whole_track():
    tracker = Tracker(TrackerConfig(agree=3, window=3, reembed_every=1))
    for frame, label in enumerate([4, 4, None, 4, 4]):
        _step(tracker, [[0, 0, 50, 50]], frame, label=label, similarity=0.4 + frame / 100)
    track = tracker.finish()[0]
    overall = track.overall()
    assert (overall.state, overall.label) == (KNOWN, 4)
    assert overall.similarity == pytest.approx(0.44)  # the best of its votes
    short = Tracker(TrackerConfig(agree=3, window=3))
    _step(short, [[0, 0, 50, 50]], 0, label=4)
    assert short.finish()[0].overall().state == PENDING  # too brief to name anybody


def test_config_is_checked():
    with pytest.raises(ValueError):
        TrackerConfig(agree=6, window=5)


# ------------------------------------------------------------------------------- real frames


def _frames(photo: np.ndarray, count: int, *, dx: int = 2) -> list[np.ndarray]:
    """``count`` 640x480 frames with the photo drifting right by ``dx`` px a frame."""
    frames = []
    h, w = photo.shape[:2]
    for i in range(count):
        canvas = np.full((480, 640, 3), 90, np.uint8)
        x, y = 150 + dx * i, 110
        canvas[y : y + h, x : x + w] = photo
        frames.append(canvas)
    return frames


@pytest.mark.slow
@pytest.mark.django_db
def test_real_frames_one_track_named_after_k_frames_and_embedded_only_when_needed(real_recognizer, lfw_dir):
    from faceengine.images import load_image
    from members.services import member_create
    from recognition.tracked import recognise_frame

    enrolled = lfw_photos(lfw_dir, "Colin_Powell")
    member = member_create(display_name="Colin Powell", photos=enrolled[:5]).member
    member_create(display_name="Tony Blair", photos=lfw_photos(lfw_dir, "Tony_Blair")[:5])
    config = TrackerConfig(agree=3, window=5, reembed_every=8)

    tracker = Tracker(config)
    results = [recognise_frame(tracker, f, i) for i, f in enumerate(_frames(load_image(enrolled[7]), 20))]
    assert all(len(r.faces) == 1 for r in results)
    assert {r.faces[0].track.id for r in results} == {1}
    states = [r.faces[0].identity.state for r in results]
    assert states[:2] == [PENDING, PENDING] and set(states[2:]) == {KNOWN}
    assert results[-1].faces[0].identity.label == member.pk
    # Embedded on frames 0-2 (new), then every 8 frames: 4 of 20, not 20.
    assert [i for i, r in enumerate(results) if r.embedded] == [0, 1, 2, 10, 18]

    stranger = Tracker(config)
    photo = load_image(lfw_photos(lfw_dir, "Gerhard_Schroeder")[0])
    last = [recognise_frame(stranger, f, i) for i, f in enumerate(_frames(photo, 5))][-1]
    assert last.faces[0].identity.state == UNKNOWN


# ------------------------------------------------------------------------------- the camera endpoint


@pytest.fixture
def camera_client(django_user_model):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_user("cam", password="pw-cam-12345"))
    return client


def _frame(client, data: bytes, stream: str = "s1"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        "/api/v1/camera/frame",
        {"stream": stream, "frame": SimpleUploadedFile("f.png", data, content_type="image/png")},
        format="multipart",
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("fake_threshold")
def test_camera_frames_keep_their_tracks_across_requests_and_name_after_k(fake_engine, camera_client):
    from members.services import member_create
    from recognition import camera
    from tests.fakes import draw_photo, face_photo

    camera.stream_store().clear()
    red = member_create(display_name="Red Person", photos=[face_photo("red")]).member
    answers = []
    for i in range(4):
        photo = draw_photo([("red", (10 + i, 10, 40, 50)), ("blue", (100, 20, 40, 50))], size=(200, 120))
        response = _frame(camera_client, photo)
        assert response.status_code == 200, response.json()
        answers.append(sorted(response.json()["faces"], key=lambda f: f["box"][0]))
    # One track per face, across requests.
    assert len({a[0]["track"] for a in answers}) == 1 and len({a[1]["track"] for a in answers}) == 1
    assert [a[0]["state"] for a in answers] == ["pending", "pending", "known", "known"]
    assert answers[-1][0]["member_id"] == red.pk and answers[-1][0]["member"] == "Red Person"
    assert answers[-1][1]["state"] == "unknown" and answers[-1][1]["member_id"] is None
    assert [a[0]["embedded"] for a in answers] == [True, True, True, False]
    # Another stream of the same user starts its own tracks.
    other = _frame(camera_client, draw_photo([("red", (10, 10, 40, 50))], size=(200, 120)), stream="s2").json()
    assert other["frame"] == 0 and other["faces"][0]["state"] == "pending"


@pytest.mark.django_db
def test_camera_bad_frames_and_stream_ids_are_refused(fake_engine, camera_client, settings):
    from tests.fakes import draw_photo, face_photo

    assert _frame(camera_client, face_photo("red"), stream="../etc").status_code == 400
    response = _frame(camera_client, b"not an image")
    assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_image_type"
    response = _frame(camera_client, draw_photo([], size=(800, 600)))
    assert response.status_code == 413 and "640 px" in response.json()["error"]["message"]
    settings.FACESITE_CAMERA_MAX_FRAME_BYTES = 200
    assert _frame(camera_client, face_photo("red")).json()["error"]["code"] == "request_too_large"


@pytest.mark.django_db
@pytest.mark.usefixtures("fake_threshold")
def test_camera_has_its_own_rate_limit(fake_engine, camera_client, settings):
    from tests.fakes import face_photo

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "camera": "3/min"},
    }
    codes = [_frame(camera_client, face_photo("red")).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


@pytest.fixture
def shared_cache(settings):
    """The default cache on the test Redis, as FACESITE_CACHE_URL makes it in production."""
    from tests.workers import REDIS_DB, REDIS_HOST, REDIS_PORT, _redis

    client = _redis()
    client.flushdb()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
        }
    }
    yield client
    client.flushdb()


def _in_another_process(call):
    """Run ``call`` as another web process would: the camera module's memory fresh, and in a
    thread of its own (Django gives it its own cache connection)."""
    import threading

    from recognition import camera

    camera._store = None
    answer = []
    thread = threading.Thread(target=lambda: answer.append(call()))
    thread.start()
    thread.join(60)
    return answer[0]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fake_threshold")
def test_a_streams_tracks_continue_whichever_process_gets_the_frame(fake_engine, camera_client, shared_cache):
    from members.services import member_create
    from recognition import camera
    from tests.fakes import draw_photo

    assert camera.tracks_shared() and isinstance(camera.stream_store(), camera.SharedStreamStore)
    member_create(display_name="Red Person", photos=[_red()])
    answers = []
    for i in range(4):  # the frames alternate between this "process" and another
        photo = draw_photo([("red", (10 + i, 10, 40, 50))], size=(200, 120))

        def send(photo: bytes = photo) -> dict:
            return _frame(camera_client, photo).json()

        answers.append(send() if i % 2 == 0 else _in_another_process(send))
    assert [a["frame"] for a in answers] == [0, 1, 2, 3]
    assert len({a["faces"][0]["track"] for a in answers}) == 1  # one track, across both
    assert [a["faces"][0]["state"] for a in answers] == ["pending", "pending", "known", "known"]
    stored = shared_cache.keys("*facesite:camera:*")
    assert len(stored) == 1 and 0 < shared_cache.ttl(stored[0]) <= 60  # in Redis, with the TTL


def _red() -> bytes:
    from tests.fakes import face_photo

    return face_photo("red")


@pytest.mark.django_db(transaction=True)
def test_the_shared_stream_lock_puts_concurrent_frames_of_a_stream_in_turn(shared_cache):
    from concurrent.futures import ThreadPoolExecutor

    from recognition import camera

    store = camera.SharedStreamStore(ttl=60)

    def one_frame(_: int) -> int:
        with store.use((1, "s")) as state:
            frame = state.frames
            time.sleep(0.01)  # a frame's recognition: another request comes meanwhile
            state.frames += 1
            return frame

    with ThreadPoolExecutor(4) as pool:
        frames = sorted(pool.map(one_frame, range(12)))
    assert frames == list(range(12))  # none read a state another was still changing
    with store.use((1, "s")) as state:
        assert state.frames == 12 and state.tracker is not None


def test_stream_store_is_bounded_and_expires(monkeypatch):
    from recognition import camera

    store = camera.StreamStore(max_streams=2, ttl=60)
    first = store.get((1, "a"))
    store.get((1, "b"))
    assert store.get((1, "a")) is first
    store.get((1, "c"))  # "b" was used least recently: it goes
    assert len(store) == 2 and store.get((1, "a")) is first
    clock = [1000.0]
    monkeypatch.setattr(camera.time, "monotonic", lambda: clock[0])
    store = camera.StreamStore(max_streams=5, ttl=60)
    old = store.get((1, "a"))
    clock[0] += 61
    assert store.get((1, "a")) is not old  # forgotten after the ttl: a fresh tracker
