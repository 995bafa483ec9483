"""The camera's server side: one small frame in, the faces with their tracks' names out.

Synchronous and short: the page posts a JPEG of at most FACESITE_CAMERA_MAX_SIDE px with its
stream id, and gets the answer in the same request (benchmarks/camera.py measures the round
trip). Each stream's tracker lives in this process's memory (``StreamStore``: at most
FACESITE_CAMERA_MAX_STREAMS streams, each forgotten FACESITE_CAMERA_STREAM_TTL s after its last
frame); a frame of a stream that reaches another process starts fresh tracks there, which only
means its names take a few frames to settle again.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from django.conf import settings

from accounts.authentication import TokenRateThrottle
from faceengine.errors import FacesiteError, ImageTooLarge
from faceengine.images import load_image
from faceengine.tracking import Tracker
from facesite.engine import image_limits
from recognition.tracked import recognise_frame

STREAM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


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

    def __len__(self) -> int:
        return len(self._streams)

    def clear(self) -> None:
        with self._lock:
            self._streams.clear()


_store: StreamStore | None = None
_store_lock = threading.Lock()


def stream_store() -> StreamStore:
    global _store
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
    state = stream_store().get((user_id, stream_id))
    with state.lock:  # the frames of one stream go through its tracker one at a time
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
