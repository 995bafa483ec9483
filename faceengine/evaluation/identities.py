"""Labelled photos (a folder per person, as LFW and most users' own sets are) through the whole
pipeline: the subject's face of each photo detected, aligned and embedded, as an enrolment does.

Detection is the slow step and does not depend on the embedder, so the faces found are cached per
detector configuration and every model then only aligns and embeds; the vectors are cached per
model too. Caches are plain ``.npz`` files keyed by what produced them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..detection import primary_face_index
from ..embedders.base import l2_normalize
from ..embedders.fused import FusedEmbedder
from ..recognizer import Recognizer

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
Progress = Callable[[Iterable], Iterable]


@dataclass(frozen=True)
class LabelledFaces:
    """One vector per photo: ``labels[i]`` is the person of ``paths[i]``; ``hows[i]`` the pass
    that found its face ("fallback": no face, the centre crop was embedded)."""

    paths: list[str]
    labels: list[str]
    vectors: np.ndarray
    hows: list[str]

    def people(self, *, min_photos: int = 1, max_photos: int | None = None) -> dict[str, list[int]]:
        """Each person's photo indices, for people with ``min_photos`` .. ``max_photos`` photos."""
        by_person: dict[str, list[int]] = {}
        for index, label in enumerate(self.labels):
            by_person.setdefault(label, []).append(index)
        return {
            person: indices
            for person, indices in by_person.items()
            if len(indices) >= min_photos and (max_photos is None or len(indices) <= max_photos)
        }


def read_identity_folder(root: Path) -> list[tuple[Path, str]]:
    """(photo, person) for every image in every sub-folder of ``root``, in a stable order."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder of people (one sub-folder of photos per person).")
    photos = []
    for person_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for photo in sorted(person_dir.rglob("*")):
            if photo.suffix.lower() in IMAGE_SUFFIXES and photo.is_file():
                photos.append((photo, person_dir.name))
    return photos


def embed_labelled_photos(
    recognizer: Recognizer,
    photos: Sequence[tuple[Path, str]],
    *,
    cache_dir: Path | None = None,
    progress: Progress = lambda items: items,
) -> LabelledFaces:
    """Every photo's subject embedded by ``recognizer`` (its model, its flip setting).

    A fused model's vectors are put together from its parts' (each cached on its own), which is
    what ``FusedEmbedder.embed`` computes face by face: the parts' unit vectors, weighted,
    concatenated and normalised.
    """
    if isinstance(recognizer.embedder, FusedEmbedder):
        fused = recognizer.embedder
        pieces = []
        for part, weight in zip(fused.parts, fused.weights, strict=True):
            alone = Recognizer(recognizer.detector, part, flip=recognizer.flip, limits=recognizer.limits)
            found = embed_labelled_photos(alone, photos, cache_dir=cache_dir, progress=progress)
            pieces.append(weight * found.vectors)
        return LabelledFaces(found.paths, found.labels, l2_normalize(np.concatenate(pieces, axis=1)), found.hows)
    paths = [str(path) for path, _ in photos]
    labels = [label for _, label in photos]
    set_key = _digest(paths)
    detection_file = vector_file = None
    if cache_dir is not None:
        detection_file = Path(cache_dir) / f"faces-{set_key}-{_digest(_detector_key(recognizer))}.npz"
        vector_file = Path(cache_dir) / (
            f"vectors-{set_key}-{recognizer.model_name}-{_digest([_detector_key(recognizer), recognizer.flip])}.npz"
        )
        if vector_file.is_file():
            cached = np.load(vector_file)
            return LabelledFaces(paths, labels, cached["vectors"], [str(h) for h in cached["hows"]])
    landmarks, hows = _detections(recognizer, paths, detection_file, progress)
    vectors = np.zeros((len(paths), recognizer.dim), np.float32)
    for index in progress(range(len(paths))):
        rgb = recognizer.load(paths[index])
        if hows[index] == "fallback":
            vectors[index] = recognizer.embed_center(rgb)
        else:
            crop = recognizer.align_face(rgb, [landmarks[index]])
            vectors[index] = recognizer.embedder.embed(crop, flip=recognizer.flip)[0]
    if vector_file is not None:
        _save(vector_file, vectors=vectors, hows=np.asarray(hows))
    return LabelledFaces(paths, labels, vectors, hows)


def _detections(
    recognizer: Recognizer, paths: list[str], cache: Path | None, progress: Progress
) -> tuple[np.ndarray, list[str]]:
    """The subject's five landmarks per photo (NaN where no face was found) and the pass."""
    if cache is not None and cache.is_file():
        cached = np.load(cache)
        return cached["landmarks"], [str(h) for h in cached["hows"]]
    landmarks = np.full((len(paths), 5, 2), np.nan, np.float32)
    hows = []
    for index in progress(range(len(paths))):
        rgb = recognizer.load(paths[index])
        found, how = recognizer.detector.detect_thorough(rgb)
        if found:
            landmarks[index] = np.asarray(found[primary_face_index(found, rgb.shape)].landmarks, np.float32)
            hows.append(how)
        else:
            hows.append("fallback")
    if cache is not None:
        _save(cache, landmarks=landmarks, hows=np.asarray(hows))
    return landmarks, hows


def _detector_key(recognizer: Recognizer) -> dict:
    """What decides which faces are found (not where the files are or how many threads run)."""
    config = asdict(recognizer.detector.config)
    for ignored in ("cache_dir", "num_threads", "yunet_model"):
        config.pop(ignored, None)
    return config


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _save(path: Path, **arrays: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
