"""The standard face-verification protocol (LFW-style k-fold), in plain numpy.

Scores are similarities: higher means "more alike" (e.g. cosine similarity of two
embeddings), and a pair is declared "same" when ``score >= threshold``.

The k-fold protocol exists so that the reported accuracy never uses a threshold tuned on
the pairs it is measured on: for each fold the threshold is chosen on the *other* folds.
AUC and TAR@FAR are threshold-free summaries computed once over all pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "VerificationResult",
    "assign_folds",
    "best_threshold",
    "kfold_verification",
    "roc_auc",
    "tar_at_far",
]


@dataclass(frozen=True)
class VerificationResult:
    """Summary of one k-fold verification run."""

    accuracy: float  # mean of the per-fold test accuracies
    std: float  # population std (np.std) of the per-fold accuracies
    threshold: float  # mean of the per-fold chosen thresholds
    auc: float  # ROC AUC over all pairs
    tar_at_far_1e3: float  # true-accept rate at FAR <= 1e-3 over all pairs
    pairs: int
    fold_accuracies: tuple[float, ...]

    def as_dict(self) -> dict[str, float | int]:
        """JSON-safe summary (plain Python floats/ints, no numpy scalars)."""
        return {
            "accuracy": float(self.accuracy),
            "std": float(self.std),
            "threshold": float(self.threshold),
            "auc": float(self.auc),
            "tar_at_far_1e-3": float(self.tar_at_far_1e3),
            "pairs": int(self.pairs),
        }


# --------------------------------------------------------------------------- validation


def _as_scores(scores: np.ndarray) -> np.ndarray:
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("no pairs: scores is empty")
    if np.isnan(arr).any():
        raise ValueError(f"scores contain {int(np.isnan(arr).sum())} NaN value(s)")
    return arr


def _as_same(same: np.ndarray, n: int) -> np.ndarray:
    arr = np.asarray(same)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"same has shape {arr.shape} but there are {n} scores")
    return arr.astype(bool)


def _check_pairs(scores: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = _as_scores(scores)
    return s, _as_same(same, s.shape[0])


def _split_classes(scores: np.ndarray, same: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    pos, neg = scores[same], scores[~same]
    if pos.size == 0 or neg.size == 0:
        raise ValueError(f"{what} needs both same and different pairs (got {pos.size} same, {neg.size} different)")
    return pos, neg


# --------------------------------------------------------------------------- folds


def assign_folds(n_pairs: int, n_folds: int = 10) -> np.ndarray:
    """Contiguous fold ids, as insightface's ``KFold(n_splits, shuffle=False)``.

    The first ``n_pairs % n_folds`` folds get one extra pair (sklearn's convention), so
    6000 pairs in 10 folds gives blocks of 600: pairs 0..599 are fold 0, and so on. The
    insightface ``.bin`` packs rely on this layout to balance classes per fold.
    """
    if n_folds < 2:
        raise ValueError(f"need at least 2 folds, got {n_folds}")
    if n_pairs < n_folds:
        raise ValueError(f"cannot split {n_pairs} pairs into {n_folds} folds")
    sizes = np.full(n_folds, n_pairs // n_folds, dtype=np.int64)
    sizes[: n_pairs % n_folds] += 1
    return np.repeat(np.arange(n_folds, dtype=np.int64), sizes)


# --------------------------------------------------------------------------- threshold


def best_threshold(scores: np.ndarray, same: np.ndarray) -> tuple[float, int]:
    """Threshold maximising accuracy of "same iff score >= t"; returns (t, n_correct).

    Candidates are the midpoints between consecutive sorted unique scores plus one value
    below the minimum (accept all) and one above the maximum (reject all); the extremes
    sit half the smallest gap (or 0.5 when all scores are equal) outside the range so they
    stay finite and JSON-safe. Ties go to the lowest threshold, like ``np.argmax`` in
    insightface's evaluation. O(n log n): one sort plus cumulative sums.
    """
    s, y = _check_pairs(scores, same)
    uniq, inverse = np.unique(s, return_inverse=True)
    m = uniq.size
    pos_per_value = np.bincount(inverse, weights=y, minlength=m).astype(np.int64)
    neg_per_value = np.bincount(inverse, minlength=m).astype(np.int64) - pos_per_value
    # Candidate i accepts exactly the unique values uniq[i:], i = 0..m.
    pos_below = np.concatenate(([0], np.cumsum(pos_per_value)))
    neg_below = np.concatenate(([0], np.cumsum(neg_per_value)))
    correct = (pos_below[-1] - pos_below) + neg_below
    best = int(np.argmax(correct))
    return _candidate(uniq, best), int(correct[best])


def _candidate(uniq: np.ndarray, i: int) -> float:
    """The threshold that accepts exactly ``uniq[i:]``."""
    m = uniq.size
    if 0 < i < m:
        return float((uniq[i - 1] + uniq[i]) / 2.0)
    margin = float(np.min(np.diff(uniq))) / 2.0 if m > 1 else 0.5
    return float(uniq[0] - margin) if i == 0 else float(uniq[-1] + margin)


def kfold_verification(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> VerificationResult:
    """Standard LFW k-fold verification accuracy plus AUC and TAR@FAR=1e-3.

    For each fold k the threshold is the accuracy-maximising one on all other folds
    (see :func:`best_threshold`), and fold k's accuracy is measured with it. Reported
    accuracy is the mean of fold accuracies, std their population std, threshold the
    mean of the chosen thresholds.
    """
    s, y = _check_pairs(scores, same)
    f = np.asarray(folds)
    if f.ndim != 1 or f.shape[0] != s.shape[0]:
        raise ValueError(f"folds has shape {f.shape} but there are {s.shape[0]} scores")
    fold_ids = np.unique(f)
    if fold_ids.size < 2:
        raise ValueError(f"need at least 2 folds, got {fold_ids.size}")
    accuracies, thresholds = [], []
    for k in fold_ids:
        test = f == k
        threshold, _ = best_threshold(s[~test], y[~test])
        accuracies.append(float(np.mean((s[test] >= threshold) == y[test])))
        thresholds.append(threshold)
    acc = np.asarray(accuracies)
    return VerificationResult(
        accuracy=float(acc.mean()),
        std=float(acc.std()),
        threshold=float(np.mean(thresholds)),
        auc=roc_auc(s, y),
        tar_at_far_1e3=tar_at_far(s, y, 1e-3),
        pairs=int(s.shape[0]),
        fold_accuracies=tuple(accuracies),
    )


# --------------------------------------------------------------------------- ROC summaries


def roc_auc(scores: np.ndarray, same: np.ndarray) -> float:
    """ROC AUC via the Mann-Whitney U statistic (average ranks for ties, no sklearn).

    Equals P(score_same > score_diff) + 0.5 * P(tie) over all same/different pairs.
    """
    s, y = _check_pairs(scores, same)
    _split_classes(s, y, "roc_auc")
    ranks = _average_ranks(s)
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks where tied values share the mean of their ranks."""
    _uniq, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)  # rank of the last element in each tie group
    mean_rank = ends - (counts - 1) / 2.0
    return mean_rank[inverse]


def tar_at_far(scores: np.ndarray, same: np.ndarray, far: float = 1e-3) -> float:
    """True-accept rate at the strictest false-accept budget ``far``.

    With N negatives at most k = floor(far * N) of them may be accepted. The threshold is
    the smallest one meeting that budget, i.e. just above the (k+1)-th largest negative
    score, so TAR = fraction of positives scoring strictly above it. With fewer than
    1/far negatives k = 0 and positives must beat the largest negative: a conservative
    choice that never reports a FAR above the one asked for.
    """
    if not 0.0 <= far <= 1.0 or math.isnan(far):
        raise ValueError(f"far must be within [0, 1], got {far}")
    s, y = _check_pairs(scores, same)
    pos, neg = _split_classes(s, y, "tar_at_far")
    allowed = math.floor(far * neg.size + 1e-9)
    if allowed >= neg.size:
        return 1.0
    neg_desc = np.sort(neg)[::-1]
    return float(np.mean(pos > neg_desc[allowed]))
