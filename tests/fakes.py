"""The fake engine for plumbing tests, photos drawn for it, and small helpers of the suite.

Photos are drawn: a black background with filled rectangles, each colour one "face". The fake
detector finds each colour's bounding box; the fake embedder maps a crop's mean colour to a
fixed direction. The real Recognizer (alignment, batching, normalisation) runs in between.
Behaviour that matters (detection, matching, accuracy) is tested on real photos instead.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from faceengine.embedders.base import Embedder, InputConvention
from faceengine.images import ImageLimits

FAKE_MODEL, FAKE_DIM = "fake-colour", 8


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def is_mysql() -> bool:
    from django.db import connection

    return connection.vendor == "mysql"


def lfw_photos(lfw_dir: Path, name: str) -> list[Path]:
    return sorted((lfw_dir / name).glob("*.jpg"))


PALETTE = {
    "red": (220, 30, 30),
    "green": (30, 200, 40),
    "blue": (30, 40, 220),
    "yellow": (220, 210, 30),
    "cyan": (30, 210, 220),
    "magenta": (210, 30, 210),
    "orange": (240, 130, 20),
    "grey": (128, 128, 128),
}


def draw_photo(faces: list[tuple[str, tuple[int, int, int, int]]] = (), size=(160, 120), fmt="PNG") -> bytes:
    """A photo with one filled rectangle (x, y, w, h) per face, in the named colour."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, (0, 0, 0))
    draw = ImageDraw.Draw(image)
    for colour, (x, y, w, h) in faces:
        draw.rectangle([x, y, x + w - 1, y + h - 1], fill=PALETTE[colour])
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def face_photo(colour: str, box=(40, 20, 60, 70), **kwargs) -> bytes:
    return draw_photo([(colour, box)], **kwargs)


class FakeDetector:
    def detect(self, image: np.ndarray):
        from faceengine.mtcnn_fast import DetectedFace

        faces = []
        colours = np.unique(image.reshape(-1, 3), axis=0)
        for colour in colours:
            if not colour.any():
                continue
            ys, xs = np.nonzero(np.all(image == colour, axis=2))
            x, y = float(xs.min()), float(ys.min())
            w, h = float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)
            landmarks = np.array(
                [
                    [x + 0.3 * w, y + 0.4 * h],
                    [x + 0.7 * w, y + 0.4 * h],
                    [x + 0.5 * w, y + 0.6 * h],
                    [x + 0.35 * w, y + 0.8 * h],
                    [x + 0.65 * w, y + 0.8 * h],
                ],
                np.float32,
            )
            faces.append(DetectedFace((x, y, w, h), 0.99, landmarks))
        return faces

    def detect_thorough(self, image: np.ndarray):
        return self.detect(image), "detected"


class FakeEmbedder(Embedder):
    name, dim = FAKE_MODEL, FAKE_DIM
    convention = InputConvention()

    def __init__(self, name: str = FAKE_MODEL, dim: int = FAKE_DIM, seed: int = 0) -> None:
        self.name, self.dim = name, dim
        self._projection = np.random.default_rng(seed).normal(size=(3, dim)).astype(np.float32)

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        # The crop's centre only: the background around an aligned face does not count.
        centre = batch[:, 40:72, 40:72, :].mean(axis=(1, 2)) + 1.0
        return centre @ self._projection


def make_fake_recognizer(name: str = FAKE_MODEL, dim: int = FAKE_DIM, seed: int = 0):
    from faceengine.recognizer import Recognizer

    return Recognizer(FakeDetector(), FakeEmbedder(name, dim, seed), limits=ImageLimits())
