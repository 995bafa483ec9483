"""The gallery change log between real processes on MariaDB: a change committed by one process
is in another process's very next search, sequence numbers follow commit order, concurrent
enrolments lose no change, a delete never comes back through a snapshot, and a damaged or
stale snapshot is refused for the database."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection, transaction

from members import selectors, services
from members.models import GalleryChange, Member, Template, vector_to_bytes
from members.services import gallery
from members.snapshots import log_prune_behind_snapshots, snapshot_path, snapshot_write
from tests.conftest import worker_database_url
from tests.fakes import FAKE_DIM, FAKE_MODEL, face_photo
from tests.stack import ROOT, stack_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.mysql]

# Another process: answers one search a line (the index's labels, its log position, where it
# was first built from, and the best member for a vector), as a worker would search.
SEARCHER = """
import json, sys, django
django.setup()
from members import selectors
for line in sys.stdin:
    ask = json.loads(line)
    cached = selectors.gallery_cached(model_name=ask["model"], dim=ask["dim"], match=ask.get("match"))
    best = cached.index.search(__import__("numpy").asarray(ask["vector"], "float32"), k=1)[0]
    print(json.dumps({"labels": sorted(cached.index.labels), "seq": cached.seq, "source": cached.source,
                      "best": best[0].label if best else None}), flush=True)
"""


class Searcher:
    def __init__(self, snapshot_dir: Path, media_root: Path) -> None:
        env = stack_env(
            database_url=worker_database_url(),
            media_root=media_root,
            FACESITE_GALLERY_SNAPSHOT_DIR=str(snapshot_dir),
            FACESITE_LOG_LEVEL="WARNING",
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", SEARCHER],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def search(self, vector: np.ndarray | None = None, match: str = "template") -> dict:
        vector = np.ones(FAKE_DIM) if vector is None else vector
        ask = {"model": FAKE_MODEL, "dim": FAKE_DIM, "match": match, "vector": [float(v) for v in vector]}
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(ask) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError(f"the searcher died: {self.process.stderr.read() if self.process.stderr else ''}")
        return json.loads(line)

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture
def searchers(tmp_path, settings):
    settings.FACESITE_GALLERY_SNAPSHOT_DIR = str(tmp_path / "snapshots")
    started: list[Searcher] = []

    def start() -> Searcher:
        searcher = Searcher(tmp_path / "snapshots", Path(settings.MEDIA_ROOT))
        started.append(searcher)
        return searcher

    yield start
    for searcher in started:
        searcher.close()


def template_ids() -> list[int]:
    return sorted(
        Template.objects.filter(model_name=FAKE_MODEL, dim=FAKE_DIM, count__gt=0, member__is_active=True).values_list(
            "member_id", flat=True
        )
    )


def colour_vector(colour: str) -> np.ndarray:
    """The fake engine's embedding of a face of this colour."""
    from tests.fakes import make_fake_recognizer

    recognizer = make_fake_recognizer()
    rgb = recognizer.load(face_photo(colour))
    return recognizer.embed_faces(rgb, recognizer.detector.detect(rgb))[0]


def test_a_change_is_in_the_other_process_s_very_next_search(fake_engine, searchers):
    other = searchers()
    assert other.search()["labels"] == []
    red = services.member_create(display_name="Red", photos=[face_photo("red")]).member
    answer = other.search()
    assert answer["labels"] == [red.pk] and answer["source"] == "database"
    blue = services.member_create(display_name="Blue", photos=[face_photo("blue")]).member
    assert other.search()["labels"] == [red.pk, blue.pk]
    # Replacing a member's faces moves its template: the next search finds it by the new face.
    services.member_add_faces(member=red, photos=[face_photo("green")], mode="replace")
    assert other.search(colour_vector("green"))["best"] == red.pk
    services.member_update(member=blue, is_active=False)
    assert other.search()["labels"] == [red.pk]
    services.member_delete(member=red)
    answer = other.search()
    assert answer["labels"] == [] and answer["source"] == "database"  # never rebuilt: changed in place
    assert answer["seq"] == selectors.gallery_log_head().seq


def test_sample_mode_follows_faces_by_embedding_id(fake_engine, searchers):
    other = searchers()
    mixed = services.member_create(display_name="Mixed", photos=[face_photo("red"), face_photo("blue")]).member
    assert other.search(colour_vector("blue"), match="sample")["best"] == mixed.pk
    blue_face = mixed.faces.order_by("id").last()
    services.face_delete(faces=[blue_face])
    answer = other.search(colour_vector("blue"), match="sample")
    assert answer["labels"] == [mixed.pk]  # one face left, of the same member


def test_sequences_follow_commit_order(fake_engine, searchers):
    """Transaction A takes its number first and commits last: B must wait for A, so no reader
    can apply B's change and skip A's for good (as with auto-increment ids)."""
    other = searchers()
    first, second = Member.objects.create(display_name="A"), Member.objects.create(display_name="B")
    before = selectors.gallery_log_head().seq
    a_has_seq, release_a = threading.Event(), threading.Event()
    seqs: dict[str, int] = {}
    timing: dict[str, float] = {}

    def write(name: str, member: Member, colour_seed: int, hold: threading.Event | None) -> None:
        try:
            with transaction.atomic():
                Template.objects.create(
                    member=member,
                    model_name=FAKE_MODEL,
                    dim=FAKE_DIM,
                    count=1,
                    vector=vector_to_bytes(np.random.default_rng(colour_seed).normal(size=FAKE_DIM).astype(np.float32)),
                )
                started = time.perf_counter()
                seqs[name] = gallery.bump_gallery_version(member.pk)
                timing[name] = time.perf_counter() - started
                if hold is not None:
                    a_has_seq.set()
                    hold.wait(10)
        finally:
            connection.close()

    a = threading.Thread(target=write, args=("a", first, 1, release_a))
    a.start()
    assert a_has_seq.wait(10)
    b = threading.Thread(target=write, args=("b", second, 2, None))
    b.start()
    time.sleep(0.6)
    # A holds its number uncommitted: B is still waiting, and readers see neither.
    assert "b" not in seqs and selectors.gallery_log_head().seq == before
    assert other.search()["labels"] == []
    release_a.set()
    a.join(10)
    b.join(10)
    assert seqs == {"a": before + 1, "b": before + 2} and timing["b"] >= 0.5
    answer = other.search()
    assert answer["labels"] == [first.pk, second.pk] and answer["seq"] == before + 2


def test_concurrent_enrolments_lose_no_change(fake_engine, searchers):
    other = searchers()
    # The first change creates the version and log rows (the test database starts empty):
    # made before the race, as the migrations do in a real database.
    services.member_create(display_name="First", photos=[face_photo("grey")])
    other.search()
    colours = ["red", "green", "blue", "yellow", "cyan", "magenta"]
    errors: list[BaseException] = []
    stop = threading.Event()
    seen_sizes: list[int] = []

    def enrol(worker: int) -> None:
        try:
            for i in range(4):
                photo = face_photo(colours[(worker + i) % len(colours)])
                member = services.member_create(display_name=f"W{worker}-{i}", photos=[photo]).member
                if i == 3:
                    services.member_delete(member=member)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    def poll() -> None:
        while not stop.is_set():
            seen_sizes.append(len(other.search()["labels"]))

    poller = threading.Thread(target=poll)
    poller.start()
    workers = [threading.Thread(target=enrol, args=(w,)) for w in range(6)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(60)
    stop.set()
    poller.join(30)
    assert not errors
    expected = template_ids()
    assert len(expected) == 1 + 6 * 3
    assert other.search()["labels"] == expected  # the other process's index, changed in place
    seqs = sorted(set(GalleryChange.objects.values_list("seq", flat=True)))
    assert seqs == list(range(seqs[0], seqs[0] + 1 + 6 * 5))  # one number per committed change, no gaps
    assert len(seen_sizes) > 3


def test_a_delete_never_comes_back_after_a_snapshot_load(fake_engine, searchers, settings):
    red = services.member_create(display_name="Red", photos=[face_photo("red")]).member
    blue = services.member_create(display_name="Blue", photos=[face_photo("blue")]).member
    written = snapshot_write(model_name=FAKE_MODEL, dim=FAKE_DIM, match="template")
    assert written.vectors == 2
    services.member_delete(member=red)  # after the snapshot: only the log knows
    answer = searchers().search(colour_vector("red"))
    assert answer["source"] == "snapshot" and answer["labels"] == [blue.pk] and answer["best"] == blue.pk
    # A newer snapshot, the log pruned behind it: a new process still never sees Red.
    snapshot_write(model_name=FAKE_MODEL, dim=FAKE_DIM, match="template")
    settings.FACESITE_GALLERY_LOG_RETENTION_HOURS = 0
    assert log_prune_behind_snapshots() >= 3
    answer = searchers().search()
    assert answer["source"] == "snapshot" and answer["labels"] == [blue.pk]


def test_a_damaged_or_stale_snapshot_is_refused_for_the_database(fake_engine, searchers, settings):
    red = services.member_create(display_name="Red", photos=[face_photo("red")]).member
    snapshot_write(model_name=FAKE_MODEL, dim=FAKE_DIM, match="template")
    path = snapshot_path(FAKE_MODEL, FAKE_DIM, "template")
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x55
    path.write_bytes(bytes(data))
    answer = searchers().search(colour_vector("red"))
    assert answer["source"] == "database" and answer["labels"] == [red.pk] and answer["best"] == red.pk
    # Stale: written, then the log pruned past it by a newer snapshot that is then lost.
    snapshot_write(model_name=FAKE_MODEL, dim=FAKE_DIM, match="template")
    old = path.read_bytes()
    blue = services.member_create(display_name="Blue", photos=[face_photo("blue")]).member
    snapshot_write(model_name=FAKE_MODEL, dim=FAKE_DIM, match="template")
    settings.FACESITE_GALLERY_LOG_RETENTION_HOURS = 0
    log_prune_behind_snapshots()
    path.write_bytes(old)
    answer = searchers().search()
    assert answer["source"] == "database" and answer["labels"] == [red.pk, blue.pk]


def test_the_command_writes_the_snapshot(fake_engine, settings, tmp_path):
    settings.FACESITE_GALLERY_SNAPSHOT_DIR = str(tmp_path)
    services.member_create(display_name="Red", photos=[face_photo("red")])
    out = io.StringIO()
    call_command("gallery_snapshot", "--model", FAKE_MODEL, "--dim", str(FAKE_DIM), "--match", "template", stdout=out)
    report = json.loads(out.getvalue())
    assert report["snapshots"][0]["vectors"] == 1 and Path(report["snapshots"][0]["path"]).exists()
