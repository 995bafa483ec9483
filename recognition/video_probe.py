"""Is this file a video we take? Its container by its first bytes, then opened with OpenCV.

The name and the declared content type are never trusted: an mp4 or mov is an ISO base media
file (a box type at bytes 4-8, the brand telling mov from mp4), a webm an EBML header with the
"webm" doc type. Then OpenCV must open it and decode its first frame; a file that only looks
like a video (truncated before its index, an empty stream) is refused here, before any job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from faceengine.errors import FacesiteError

ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")
EBML = b"\x1a\x45\xdf\xa3"


class InvalidVideo(FacesiteError):
    """A file that claims to be a video but cannot be read as one."""

    code = "invalid_video"
    http_status = 400


class UnsupportedVideoType(FacesiteError):
    code = "unsupported_video_type"
    http_status = 415


class VideoTooLarge(FacesiteError):
    code = "video_too_large"
    http_status = 413


@dataclass(frozen=True)
class VideoInfo:
    container: str
    width: int
    height: int
    fps: float
    frame_count: int  # 0 when the container does not say (some webm files)

    @property
    def duration_s(self) -> float | None:
        return self.frame_count / self.fps if self.frame_count > 0 and self.fps > 0 else None


def container_of(head: bytes) -> str:
    """ "mp4", "mov" or "webm" from the file's first bytes; ``UnsupportedVideoType`` otherwise."""
    if not head:
        raise InvalidVideo("The file is empty.")
    if len(head) >= 12 and head[4:8] in ISO_BOXES:
        if head[4:8] == b"ftyp" and head[8:12] == b"qt  ":
            return "mov"
        return "mp4"
    if head.startswith(EBML):
        if b"webm" in head[:64]:
            return "webm"
        raise UnsupportedVideoType("The file is a Matroska video, not webm; send mp4, webm or mov.")
    raise UnsupportedVideoType("The file is not a video: send mp4, webm or mov.")


def probe(path: Path | str, container: str) -> VideoInfo:
    """Open the video with OpenCV and decode its first frame; ``InvalidVideo`` with the reason."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise InvalidVideo(f"The {container} file cannot be opened as a video (damaged or truncated?).")
        ok, frame = capture.read()
        if not ok or frame is None:
            raise InvalidVideo(f"No frame of the {container} file could be decoded (empty, damaged or truncated?).")
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if not 0 < fps <= 1000:
            fps = 0.0
        return VideoInfo(container, int(frame.shape[1]), int(frame.shape[0]), fps, max(count, 0))
    finally:
        capture.release()
