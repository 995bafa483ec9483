"""Verification accuracy while training: benchmark pairs scored with the backbone being trained.

Pairs, folds and the 10-fold protocol are the engine's (``faceengine.evaluation``):
the same readers and the same :func:`kfold_verification` that ``manage.py evaluate`` uses, so
the numbers logged during training mean what the served model's numbers mean. Faces are aligned
once, up front (LFW photos through the engine's MTCNN + alignment, with a crop cache; the
insightface ``.bin`` packs are aligned already), and kept in memory as uint8.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from faceengine.evaluation.datasets import PairSet, load_benchmark, read_lfw
from faceengine.evaluation.protocol import kfold_verification
from faceengine.evaluation.runner import score_pairs

from .data.convention import MEAN, STD

logger = logging.getLogger(__name__)

__all__ = ["VerificationSet", "embed_faces", "evaluate_sets", "load_verification_set"]


@dataclass
class VerificationSet:
    """Aligned faces (n, size, size, 3) uint8 RGB plus the pairs that index them."""

    name: str
    faces: np.ndarray
    pairs: np.ndarray
    same: np.ndarray
    folds: np.ndarray
    fallbacks: int = 0  # images whose face was not found (centre crop, as the engine does)


def _decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("could not decode a benchmark image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _resize(face: np.ndarray, size: int) -> np.ndarray:
    if face.shape[:2] == (size, size):
        return face
    return cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)


def from_pairset(
    pairset: PairSet,
    size: int,
    aligner: Callable[[bytes], np.ndarray | None] | None = None,
    cache: Path | None = None,
    progress: Callable[[Iterable], Iterable] = lambda items: items,
) -> VerificationSet:
    """Align (or, without ``aligner``, just decode and resize) every image of the pair set."""
    from faceengine.align import center_crop

    faces = np.zeros((len(pairset.images), size, size, 3), np.uint8)
    fallbacks = 0
    for index, ref in enumerate(progress(pairset.images)):
        cached = cache / f"{ref.key}.png" if cache is not None else None
        if cached is not None and cached.is_file():
            faces[index] = _decode(cached.read_bytes())
            continue
        data = ref.read_bytes()
        face = aligner(data) if aligner is not None else _resize(_decode(data), size)
        if face is None:
            face = center_crop(_decode(data), size)
            fallbacks += 1
        faces[index] = face
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(cached), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    return VerificationSet(pairset.name, faces, pairset.pairs, pairset.same, pairset.folds, fallbacks)


def load_verification_set(
    kind: str,
    path: Path,
    size: int,
    *,
    pairs_file: str = "pairs.txt",
    aligner=None,
    cache: Path | None = None,
    progress=lambda items: items,
) -> list[VerificationSet]:
    """``lfw`` (a folder with a pairs file; needs ``aligner``), ``bin`` (insightface packs), ``cfp-*``."""
    pairsets = [read_lfw(Path(path), pairs_file)] if kind == "lfw" else load_benchmark(kind, Path(path))
    use_aligner = aligner if kind != "bin" else None
    return [from_pairset(p, size, use_aligner, cache / p.name if cache else None, progress) for p in pairsets]


def embed_faces(backbone, faces: np.ndarray, *, batch_size: int = 64, flip: bool = True) -> np.ndarray:
    """Unit-length embeddings of uint8 faces; with ``flip`` each face's mirror image is added."""
    outputs = []
    for start in range(0, len(faces), batch_size):
        batch = (faces[start : start + batch_size].astype(np.float32) - MEAN) / STD
        vectors = np.asarray(backbone(batch, training=False), np.float32)
        if flip:
            vectors = vectors + np.asarray(backbone(batch[:, :, ::-1, :].copy(), training=False), np.float32)
        outputs.append(vectors)
    vectors = np.concatenate(outputs) if outputs else np.zeros((0, 1), np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def evaluate_sets(backbone, sets: list[VerificationSet], *, batch_size: int = 64, flip: bool = True) -> dict:
    """{name: {"accuracy", "std", "threshold", "auc", "pairs"}} under the 10-fold protocol."""
    results = {}
    for vset in sets:
        embeddings = embed_faces(backbone, vset.faces, batch_size=batch_size, flip=flip)
        result = kfold_verification(score_pairs(embeddings, vset.pairs), vset.same, vset.folds)
        results[vset.name] = {
            "accuracy": result.accuracy,
            "std": result.std,
            "threshold": result.threshold,
            "auc": result.auc,
            "pairs": result.pairs,
        }
    return results
