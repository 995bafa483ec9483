"""Two workers adding photos to one member at once give the template of doing it in turn.

Real concurrent transactions on MariaDB/MySQL (one connection per thread, row locks); SQLite
locks the whole database file, so there is nothing to show there.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from django.db import connection

from members import services
from members.models import Embedding, FaceSample, Template
from tests.fakes import face_photo, is_mysql, lfw_photos

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.mysql]

HOLD = 0.4  # seconds each transaction holds the template between reading and writing it


def photo_sets(engine: str, request) -> tuple[list, list, list]:
    if engine == "fake":
        request.getfixturevalue("fake_engine")
        return (
            [face_photo("grey")],
            [face_photo("red"), face_photo("blue")],
            [face_photo("green"), face_photo("yellow"), face_photo("cyan")],
        )
    request.getfixturevalue("real_recognizer")
    photos = lfw_photos(request.getfixturevalue("lfw_dir"), "Colin_Powell")[:6]
    return photos[:1], photos[1:3], photos[3:6]


@pytest.mark.parametrize("engine", ["fake", "real"])
def test_concurrent_additions_give_the_sequential_template(engine, request, monkeypatch):
    if not is_mysql():
        pytest.skip("needs MariaDB/MySQL: SQLite has no row locks, its writers queue for the whole file")
    first, batch_a, batch_b = photo_sets(engine, request)

    sequential = services.member_create(display_name="In turn", photos=first).member
    services.member_add_faces(member=sequential, photos=batch_a)
    services.member_add_faces(member=sequential, photos=batch_b)

    concurrent = services.member_create(display_name="At once", photos=first).member
    # Widen the window between reading the template and writing it back: without the member
    # row lock both workers would read the same template and the second would erase the first.
    timings: dict[str, dict[str, float]] = {}
    from members.services import enrolment, gallery

    lock_member, locked_template = enrolment.lock_member, gallery._locked_template

    at_the_lock = threading.Barrier(2)

    def timed_lock(member_id):
        name = threading.current_thread().name
        # The engine work before the transaction takes each worker a different time: both
        # ask for the lock together, so the transactions are sure to overlap.
        at_the_lock.wait(timeout=120)
        timings.setdefault(name, {})["requested"] = time.monotonic()
        member = lock_member(member_id)
        timings[name]["acquired"] = time.monotonic()
        return member

    def slow_template(member_id, model_name):
        template = locked_template(member_id, model_name)
        time.sleep(HOLD)
        return template

    # Where member_add_faces looks them up: the lock in enrolment, the template read in gallery.
    monkeypatch.setattr(enrolment, "lock_member", timed_lock)
    monkeypatch.setattr(gallery, "_locked_template", slow_template)

    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def worker(photos):
        try:
            barrier.wait(timeout=30)
            services.member_add_faces(member=concurrent.pk, photos=photos)
        except BaseException as exc:  # noqa: BLE001 - any failure in the thread is reported by the main thread
            failures.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=(batch,), name=f"worker-{i}") for i, batch in enumerate((batch_a, batch_b))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not failures, failures
    assert len(timings) == 2

    # The transactions really overlapped: one worker waited for the other's row lock.
    waits = sorted(t["acquired"] - t["requested"] for t in timings.values())
    assert waits[1] >= HOLD * 0.8, timings

    expected = Template.objects.get(member=sequential)
    got = Template.objects.get(member=concurrent)
    total = len(first) + len(batch_a) + len(batch_b)
    assert got.count == expected.count == total
    assert FaceSample.objects.filter(member=concurrent).count() == total
    assert Embedding.objects.filter(face__member=concurrent).count() == total
    np.testing.assert_allclose(got.as_array(), expected.as_array(), atol=1e-6)
    # And both equal the mean of every stored embedding.
    stored = np.stack([e.as_array() for e in Embedding.objects.filter(face__member=concurrent)])
    np.testing.assert_allclose(got.as_array(), stored.mean(axis=0), atol=1e-6)
