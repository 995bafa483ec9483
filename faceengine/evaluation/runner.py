"""Running a verification benchmark through the whole pipeline (detect, align, embed).

Each distinct image is embedded once, however many pairs use it. A portrait whose face MTCNN
cannot find even on the harder second pass falls back to a centre crop; those images are
counted and reported, since their pairs score near chance.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from ..recognizer import Recognizer
from .datasets import PairSet
from .protocol import VerificationResult, kfold_verification

Progress = Callable[[Iterable], Iterable]


@dataclass(frozen=True)
class BenchmarkReport:
    name: str
    result: VerificationResult
    fallbacks: int  # images embedded from a blind centre crop
    second_pass: int  # images whose face only the harder second pass found
    pairs_with_fallback: int
    accuracy_without_fallback: float | None
    # The same protocol had the second-pass images been blind centre crops instead: the
    # measured effect of trying harder before falling back.
    accuracy_without_second_pass: float | None = None
    # How many images each pass found ("detected", a thorough step, "fallback"), and how many
    # faces each detector found.
    passes: dict[str, int] = field(default_factory=dict)
    detectors: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        data: dict[str, float | int | None] = dict(self.result.as_dict())
        data.update(
            {
                "fallbacks": self.fallbacks,
                "second_pass": self.second_pass,
                "pairs_with_fallback": self.pairs_with_fallback,
                "accuracy_without_fallback_pairs": self.accuracy_without_fallback,
                "accuracy_without_second_pass": self.accuracy_without_second_pass,
            }
        )
        return {**data, "passes": dict(self.passes), "detectors": dict(self.detectors)}


def embed_pairset(
    pairset: PairSet, recognizer: Recognizer, progress: Progress = lambda items: items
) -> tuple[np.ndarray, list[str], dict]:
    """(embeddings (n_images, dim), how each was found, {index: centre-crop embedding} for the
    images only the second pass found) for every image of the set."""
    embeddings = np.zeros((len(pairset.images), recognizer.dim), np.float32)
    hows: list[str] = []
    blind: dict[int, np.ndarray] = {}
    for index, ref in enumerate(progress(pairset.images)):
        data = ref.read_bytes()
        primary = recognizer.embed_primary(data)
        embeddings[index] = primary.embedding
        hows.append(primary.how if primary.face is None else f"{primary.how}:{primary.face.detector}")
        if primary.how not in ("detected", "fallback"):
            blind[index] = recognizer.embed_center(data)
    return embeddings, hows, blind


def score_pairs(embeddings: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Cosine similarity of each pair (the embeddings are unit length)."""
    return np.einsum("ij,ij->i", embeddings[pairs[:, 0]], embeddings[pairs[:, 1]])


def evaluate_pairset(
    pairset: PairSet, recognizer: Recognizer, progress: Progress = lambda items: items
) -> BenchmarkReport:
    embeddings, hows, blind = embed_pairset(pairset, recognizer, progress)
    scores = score_pairs(embeddings, pairset.pairs)
    result = kfold_verification(scores, pairset.same, pairset.folds)
    without_second_pass = None
    if blind:
        first_pass_only = embeddings.copy()
        for index, vector in blind.items():
            first_pass_only[index] = vector
        without_second_pass = kfold_verification(
            score_pairs(first_pass_only, pairset.pairs), pairset.same, pairset.folds
        ).accuracy
    fallback_image = np.array([how == "fallback" for how in hows], bool)
    passes = Counter(how.split(":")[0] for how in hows)
    detectors = Counter(how.split(":")[1] for how in hows if ":" in how)
    pair_has_fallback = fallback_image[pairset.pairs].any(axis=1)
    clean_accuracy = None
    if pair_has_fallback.any() and not pair_has_fallback.all():
        # Accuracy of the pairs without a blind crop, at the protocol's own threshold.
        keep = ~pair_has_fallback
        clean_accuracy = float(np.mean((scores[keep] >= result.threshold) == pairset.same[keep]))
    return BenchmarkReport(
        name=pairset.name,
        result=result,
        fallbacks=passes["fallback"],
        second_pass=sum(n for how, n in passes.items() if how not in ("detected", "fallback")),
        pairs_with_fallback=int(pair_has_fallback.sum()),
        accuracy_without_fallback=clean_accuracy,
        accuracy_without_second_pass=without_second_pass,
        passes=dict(passes),
        detectors=dict(detectors),
    )
