"""Face tracking (faceengine.tracking) on synthetic boxes, and the tracked recognition of
frames (recognition.tracked) on real LFW photos with the real engine."""

from __future__ import annotations

import numpy as np
import pytest

from faceengine.tracking import KNOWN, PENDING, UNKNOWN, Tracker, TrackerConfig, iou
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
