"""A folder per identity: ``root/<person>/<photo>.jpg``, aligned once through the engine.

Raw photos are detected and aligned with the same MTCNN + similarity transform the engine
serves with (train on what you serve), and the crops are cached as PNG under
``cache/<person>/<photo>.png``: later runs and epochs read the cache and never detect again.
A photo without a face is skipped, not centre-cropped, so no blind crop pollutes training.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}

# encoded photo -> aligned RGB uint8 crop, or None when no face was found
Aligner = Callable[[bytes], "np.ndarray | None"]

__all__ = ["IMAGE_SUFFIXES", "IdentityFolder", "align_identities", "engine_aligner", "scan_identities"]


@dataclass
class IdentityFolder:
    """Files and class ids of an identity folder; ``names[label]`` is the person."""

    files: list[Path]
    labels: list[int]
    names: list[str]

    @property
    def classes(self) -> int:
        return len(self.names)

    def __len__(self) -> int:
        return len(self.files)


def scan_identities(root: Path, *, min_images: int = 1, people: Iterable[str] | None = None) -> IdentityFolder:
    """Every person folder with at least ``min_images`` photos, in name order."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    wanted = set(people) if people is not None else None
    files: list[Path] = []
    labels: list[int] = []
    names: list[str] = []
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        if wanted is not None and person.name not in wanted:
            continue
        photos = sorted(p for p in person.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if len(photos) < min_images:
            continue
        label = len(names)
        names.append(person.name)
        files.extend(photos)
        labels.extend([label] * len(photos))
    if not names:
        raise ValueError(f"no identity folders with at least {min_images} images in {root}")
    return IdentityFolder(files, labels, names)


def engine_aligner(detector, size: int = 112, limits=None) -> Aligner:
    """Align like the engine: ``detector`` (a FaceDetector) finds faces thoroughly (the second,
    harder pass included), the primary face is warped onto the ArcFace template."""
    from faceengine.align import align_face
    from faceengine.detection import primary_face_index
    from faceengine.images import load_image

    def align(data: bytes) -> np.ndarray | None:
        rgb = load_image(data, limits)
        found, _ = detector.detect_thorough(rgb)
        if not found:
            return None
        face = found[primary_face_index(found, rgb.shape)]
        return align_face(rgb, np.asarray(face.landmarks), size)

    return align


def align_identities(
    folder: IdentityFolder,
    root: Path,
    cache: Path,
    aligner: Aligner,
    progress: Callable[[Iterable], Iterable] = lambda items: items,
) -> IdentityFolder:
    """The same identities, pointing at aligned crops in ``cache`` (made where missing).

    A ``<photo>.noface`` marker remembers photos without a face so they are not re-detected.
    """
    root, cache = Path(root), Path(cache)
    files, labels = [], []
    skipped = 0
    for path, label in progress(list(zip(folder.files, folder.labels, strict=True))):
        target = cache / path.relative_to(root).with_suffix(".png")
        marker = target.with_suffix(".noface")
        if not target.is_file() and not marker.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            crop = aligner(path.read_bytes())
            if crop is None:
                marker.touch()
            else:
                ok, encoded = cv2.imencode(".png", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
                if not ok:
                    raise ValueError(f"could not encode the crop of {path}")
                tmp = target.with_suffix(".tmp")
                tmp.write_bytes(encoded.tobytes())
                tmp.replace(target)  # atomic: an interrupted run never leaves half a PNG
        if target.is_file():
            files.append(target)
            labels.append(label)
        else:
            skipped += 1
    if skipped:
        logger.info("%d of %d photos had no face and were skipped", skipped, len(folder))
    return IdentityFolder(files, labels, folder.names)
