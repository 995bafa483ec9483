"""The camera's server side: one small frame in, the faces with their tracks' names out.

Synchronous and short: the page posts a JPEG of at most FACESITE_CAMERA_MAX_SIDE px with its
stream id, and gets the answer in the same request (benchmarks/camera.py measures the round
trip). Each stream's tracker lives either in this process's memory (``StreamStore``: at most
FACESITE_CAMERA_MAX_STREAMS streams, each forgotten FACESITE_CAMERA_STREAM_TTL s after its last
frame) or, where the web server runs several processes and the cache is shared (Redis, through
FACESITE_CACHE_URL), in the cache (``SharedStreamStore``), so that the frames of one stream
continue the same tracks whichever process they reach. FACESITE_CAMERA_TRACKS chooses
(``auto``: the cache when it is shared).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import caches

from accounts.authentication import TokenRateThrottle
from faceengine.errors import FacesiteError, ImageTooLarge
from faceengine.images import load_image
from faceengine.tracking import Tracker
from facesite.engine import image_limits
from recognition.tracked import recognise_frame

logger = logging.getLogger(__name__)

STREAM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TRACK_STORES = ("auto", "process", "cache")
# Cache backends that are not shared between processes: ``auto`` keeps the tracks in memory.
_PRIVATE_CACHES = ("LocMemCache", "DummyCache")


class CameraRateThrottle(TokenRateThrottle):
    """The camera's own rate (FACESITE_CAMERA_RATE, per token or user): frames come several a
    second, far above the engine rate of photo calls, and each one is small."""

    scope = "camera"


class InvalidStream(FacesiteError):
    code = "invalid_input"
    http_status = 400


@dataclass
class StreamState:
    tracker: Tracker
    frames: int = 0
    last_seen: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)


class StreamStore:
    """Per-stream trackers of this process: bounded (the least recently used goes first) and
    expiring (a stream not heard from for ``ttl`` seconds is forgotten)."""

    def __init__(self, max_streams: int, ttl: float) -> None:
        self.max_streams, self.ttl = max_streams, ttl
        self._streams: OrderedDict[tuple[int, str], StreamState] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[int, str]) -> StreamState:
        now = time.monotonic()
        with self._lock:
            for old_key in [k for k, s in self._streams.items() if now - s.last_seen > self.ttl]:
                del self._streams[old_key]
            state = self._streams.get(key)
            if state is None:
                state = self._streams[key] = StreamState(Tracker())
                while len(self._streams) > self.max_streams:
                    self._streams.popitem(last=False)
            self._streams.move_to_end(key)
            state.last_seen = now
            return state

    @contextmanager
    def use(self, key: tuple[int, str]) -> Iterator[StreamState]:
        """The stream's state, for one frame at a time (the frames of a stream go through its
        tracker in turn)."""
        state = self.get(key)
        with state.lock:
            yield state

    def __len__(self) -> int:
        return len(self._streams)

    def clear(self) -> None:
        with self._lock:
            self._streams.clear()


class SharedStreamStore:
    """Per-stream trackers in a cache every web process shares: each frame takes the stream's
    lock (a key added only if absent), reads the tracker, and writes it back with the TTL. The
    page has at most two frames in flight, so a lock is held for one frame's recognition and
    waited for rarely; one held past ``lock_s`` (a process that died holding it) expires."""

    def __init__(self, ttl: float, cache: Any = None, *, lock_s: float = 5.0, wait_s: float = 2.0) -> None:
        self.ttl, self.lock_s, self.wait_s = ttl, lock_s, wait_s
        self.cache = cache if cache is not None else caches["default"]

    @staticmethod
    def _key(key: tuple[int, str]) -> str:
        return f"facesite:camera:{key[0]}:{key[1]}"

    @contextmanager
    def use(self, key: tuple[int, str]) -> Iterator[StreamState]:
        name = self._key(key)
        token = uuid.uuid4().hex
        deadline = time.monotonic() + self.wait_s
        locked = self.cache.add(f"{name}:lock", token, timeout=self.lock_s)
        while not locked and time.monotonic() < deadline:
            time.sleep(0.005)
            locked = self.cache.add(f"{name}:lock", token, timeout=self.lock_s)
        if not locked:  # rather a frame on a copy of the tracks than no answer
            logger.warning("Camera stream %s: its lock was held for %.1f s; going on without it.", key, self.wait_s)
        try:
            stored = self.cache.get(name)
            tracker, frames = stored if stored is not None else (Tracker(), 0)
            state = StreamState(tracker, frames)
            yield state
            self.cache.set(name, (state.tracker, state.frames), timeout=self.ttl)
        finally:
            if locked and self.cache.get(f"{name}:lock") == token:
                self.cache.delete(f"{name}:lock")


_store: StreamStore | None = None
_store_lock = threading.Lock()


def tracks_shared() -> bool:
    """Whether the streams' tracks live in the cache (FACESITE_CAMERA_TRACKS)."""
    choice = str(settings.FACESITE_CAMERA_TRACKS)
    if choice not in TRACK_STORES:
        raise ValueError(f"FACESITE_CAMERA_TRACKS must be one of {', '.join(TRACK_STORES)}, got {choice!r}.")
    if choice == "auto":
        backend = str(settings.CACHES["default"]["BACKEND"])
        return not backend.endswith(_PRIVATE_CACHES)
    return choice == "cache"


def stream_store() -> StreamStore | SharedStreamStore:
    global _store
    if tracks_shared():
        return SharedStreamStore(float(settings.FACESITE_CAMERA_STREAM_TTL))
    with _store_lock:
        limits = (int(settings.FACESITE_CAMERA_MAX_STREAMS), float(settings.FACESITE_CAMERA_STREAM_TTL))
        if _store is None or (_store.max_streams, _store.ttl) != limits:
            _store = StreamStore(*limits)
        return _store


def camera_frame(*, user_id: int, stream_id: str, data: bytes) -> dict:
    """Recognise one camera frame of a stream: every face with its track, box and identity."""
    from members.selectors import member_names

    if not STREAM_ID.match(stream_id or ""):
        raise InvalidStream("stream must be 1-64 letters, digits, '-' or '_'.")
    started = time.perf_counter()
    rgb = load_image(data, image_limits())
    max_side = int(settings.FACESITE_CAMERA_MAX_SIDE)
    if max(rgb.shape[:2]) > max_side:
        raise ImageTooLarge(
            f"A camera frame is at most {max_side} px on its longer side; this one is {rgb.shape[1]}x{rgb.shape[0]}."
        )
    decoded = time.perf_counter()
    with stream_store().use((user_id, stream_id)) as state:
        frame = state.frames
        state.frames += 1
        result = recognise_frame(state.tracker, rgb, frame)
    names = member_names([int(f.identity.label) for f in result.faces if f.identity.label is not None])  # type: ignore[call-overload]
    faces = []
    for face in result.faces:
        identity = face.identity
        member_id = int(identity.label) if identity.label is not None else None  # type: ignore[call-overload]
        faces.append(
            {
                "track": face.track.id,
                "box": [round(v, 1) for v in face.box],
                "state": identity.state if member_id is None or member_id in names else "unknown",
                "member_id": member_id if member_id in names else None,
                "member": names.get(member_id) if member_id is not None else None,
                "similarity": None if identity.similarity is None else round(identity.similarity, 4),
                "embedded": face.embedded,
            }
        )
    done = time.perf_counter()
    return {
        "stream": stream_id,
        "frame": frame,
        "width": int(rgb.shape[1]),
        "height": int(rgb.shape[0]),
        "faces": faces,
        "timings": {"decode": round(decoded - started, 4), "recognise": round(done - decoded, 4)},
    }
