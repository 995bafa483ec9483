"""Tests for the k-fold verification protocol (numpy only, no Django, no database)."""

from __future__ import annotations

import itertools
import json
import time

import numpy as np
import pytest

from faceengine.evaluation.protocol import (
    VerificationResult,
    assign_folds,
    best_threshold,
    kfold_verification,
    roc_auc,
    tar_at_far,
)

# --------------------------------------------------------------------------- slow references


def reference_kfold(scores, same, folds):
    """Obvious O(n^2) LFW protocol with the same candidates and tie rule (lowest wins)."""
    accuracies, thresholds = [], []
    for k in np.unique(folds):
        train_s, train_y = scores[folds != k], same[folds != k]
        uniq = sorted(set(train_s.tolist()))
        margin = min(b - a for a, b in itertools.pairwise(uniq)) / 2 if len(uniq) > 1 else 0.5
        candidates = [uniq[0] - margin] + [(a + b) / 2 for a, b in itertools.pairwise(uniq)] + [uniq[-1] + margin]
        best_t, best_correct = None, -1
        for t in candidates:
            correct = int(np.sum((train_s >= t) == train_y))  # one candidate at a time
            if correct > best_correct:
                best_t, best_correct = t, correct
        test = folds == k
        accuracies.append(np.mean((scores[test] >= best_t) == same[test]))
        thresholds.append(best_t)
    return np.array(accuracies), float(np.mean(thresholds))


def brute_auc(scores, same):
    pos, neg = scores[same], scores[~same]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


# --------------------------------------------------------------------------- kfold


def test_perfectly_separable_gives_full_accuracy_and_threshold_between_classes():
    rng = np.random.default_rng(0)
    same = np.tile([True, False], 50)
    scores = np.where(same, rng.uniform(0.6, 0.9, 100), rng.uniform(-0.2, 0.3, 100))
    result = kfold_verification(scores, same, assign_folds(100, 10))
    assert result.accuracy == 1.0
    assert result.std == 0.0
    assert scores[~same].max() < result.threshold < scores[same].min()
    assert result.auc == 1.0
    assert result.pairs == 100
    assert result.fold_accuracies == (1.0,) * 10


def test_one_mislabelled_pair_costs_exactly_its_fold():
    # 5 folds of 4 pairs: same at 0.9, 0.8 and different at 0.2, 0.1 in every fold,
    # except fold 2 whose different pair at 0.1 is replaced by a "different" pair scoring 0.95.
    scores = np.tile([0.9, 0.8, 0.2, 0.1], 5)
    same = np.tile([True, True, False, False], 5)
    scores[2 * 4 + 3] = 0.95
    folds = np.repeat(np.arange(5), 4)
    result = kfold_verification(scores, same, folds)
    # Training on any fold set keeps the threshold in (0.2, 0.8): the outlier at 0.95 is a
    # single error wherever it is, so fold 2 scores 3/4 and the others 4/4.
    assert result.fold_accuracies == (1.0, 1.0, 0.75, 1.0, 1.0)
    assert result.accuracy == pytest.approx(4.75 / 5)
    assert result.std == pytest.approx(np.std([1, 1, 0.75, 1, 1]))
    # Lowest best threshold: midpoint of 0.2 and 0.8 is 0.5 for every fold.
    assert result.threshold == pytest.approx(0.5)


def test_threshold_is_chosen_on_the_other_folds():
    # Folds 0 and 1: same at 0.6, different at 0.4 -> best train threshold 0.5.
    # Fold 2: same at 0.45, different at 0.3. Its own best threshold (0.375) would give
    # 1.0 but the threshold from folds 0+1 (0.5) rejects the 0.45 same pair -> 0.5.
    scores = np.array([0.6, 0.4, 0.6, 0.4, 0.45, 0.3])
    same = np.array([True, False, True, False, True, False])
    folds = np.array([0, 0, 1, 1, 2, 2])
    _own_threshold, own_correct = best_threshold(scores[4:], same[4:])
    assert own_correct == 2  # choosing on fold 2 itself would be perfect
    result = kfold_verification(scores, same, folds)
    assert result.fold_accuracies[2] == 0.5
    assert result.fold_accuracies[0] == 1.0 and result.fold_accuracies[1] == 1.0


def test_best_threshold_ties_and_extremes():
    # All same: accept everything -> threshold below the minimum.
    t, correct = best_threshold(np.array([0.2, 0.5]), np.array([True, True]))
    assert correct == 2 and t < 0.2
    # All different: reject everything -> threshold above the maximum.
    t, correct = best_threshold(np.array([0.2, 0.5]), np.array([False, False]))
    assert correct == 2 and t > 0.5
    # Tied scores with mixed labels can't be split: best is 1 of 2 correct.
    t, correct = best_threshold(np.array([0.3, 0.3]), np.array([True, False]))
    assert correct == 1


def test_matches_slow_reference_on_random_subset():
    rng = np.random.default_rng(42)
    n = 400
    same = rng.random(n) < 0.5
    scores = np.round(np.where(same, rng.normal(0.5, 0.2, n), rng.normal(0.2, 0.2, n)), 2)  # ties
    folds = assign_folds(n, 10)
    result = kfold_verification(scores, same, folds)
    ref_acc, ref_threshold = reference_kfold(scores, same, folds)
    np.testing.assert_allclose(result.fold_accuracies, ref_acc)
    assert result.accuracy == pytest.approx(ref_acc.mean())
    assert result.std == pytest.approx(ref_acc.std())
    assert result.threshold == pytest.approx(ref_threshold)


def test_12000_pairs_is_fast_and_sane():
    rng = np.random.default_rng(7)
    n = 12_000
    same = rng.random(n) < 0.5
    scores = np.where(same, rng.normal(0.6, 0.15, n), rng.normal(0.1, 0.15, n))
    folds = assign_folds(n, 10)
    start = time.perf_counter()
    result = kfold_verification(scores, same, folds)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"kfold_verification took {elapsed:.2f}s for 12,000 pairs"
    # Bayes threshold for two equal-variance normals is the midpoint 0.35; accuracy ~ Phi(0.25/0.15).
    assert 0.30 < result.threshold < 0.40
    assert 0.93 < result.accuracy < 0.97
    assert result.pairs == n
    # Same numbers as the slow reference on a subset (each fold's first 60 pairs).
    subset = np.concatenate([np.flatnonzero(folds == k)[:60] for k in range(10)])
    sub = kfold_verification(scores[subset], same[subset], folds[subset])
    ref_acc, ref_threshold = reference_kfold(scores[subset], same[subset], folds[subset])
    np.testing.assert_allclose(sub.fold_accuracies, ref_acc)
    assert sub.threshold == pytest.approx(ref_threshold)


@pytest.mark.parametrize(
    "scores, same, folds, message",
    [
        ([0.1, 0.2], [True], [0, 1], "same"),
        ([0.1, 0.2], [True, False], [0], "folds"),
        ([], [], [], "empty"),
        ([0.1, 0.2, 0.3], [True, False, True], [0, 0, 0], "at least 2 folds"),
        ([0.1, float("nan")], [True, False], [0, 1], "NaN"),
    ],
)
def test_bad_input_raises(scores, same, folds, message):
    with pytest.raises(ValueError, match=message):
        kfold_verification(np.array(scores, dtype=float), np.array(same, dtype=bool), np.array(folds))


def test_as_dict_is_json_safe():
    result = kfold_verification(
        np.array([0.9, 0.1, 0.8, 0.2]), np.array([True, False, True, False]), np.array([0, 0, 1, 1])
    )
    assert isinstance(result, VerificationResult)
    data = result.as_dict()
    assert set(data) == {"accuracy", "std", "threshold", "auc", "tar_at_far_1e-3", "pairs"}
    assert all(type(v) in (float, int) for v in data.values())
    assert json.loads(json.dumps(data)) == data
    assert data["pairs"] == 4 and data["accuracy"] == 1.0


# --------------------------------------------------------------------------- AUC / TAR


def test_auc_matches_bruteforce_with_ties():
    rng = np.random.default_rng(3)
    for _ in range(5):
        n = 300
        same = rng.random(n) < 0.4
        scores = rng.integers(0, 20, n).astype(float) + same * rng.integers(0, 4, n)  # many ties
        assert roc_auc(scores, same) == pytest.approx(brute_auc(scores, same), abs=1e-12)


def test_auc_hand_cases():
    assert roc_auc(np.array([1.0, 0.0]), np.array([True, False])) == 1.0
    assert roc_auc(np.array([0.0, 1.0]), np.array([True, False])) == 0.0
    assert roc_auc(np.array([0.5, 0.5]), np.array([True, False])) == 0.5
    with pytest.raises(ValueError, match="both"):
        roc_auc(np.array([0.5, 0.6]), np.array([True, True]))


def test_tar_at_far_hand_case():
    # 2000 negatives: 0.001 * 2000 = 2 false accepts allowed -> threshold just above the
    # third-largest negative (0.7). Positives: 0.95, 0.9, 0.71, 0.7, 0.5 -> 3 of 5 pass.
    neg = np.concatenate([[0.9, 0.8, 0.7], np.linspace(-0.5, 0.6, 1997)])
    pos = np.array([0.95, 0.9, 0.71, 0.7, 0.5])
    scores = np.concatenate([pos, neg])
    same = np.concatenate([np.ones(5, bool), np.zeros(2000, bool)])
    assert tar_at_far(scores, same, 1e-3) == pytest.approx(3 / 5)
    # With only 10 negatives no false accept is allowed: positives must beat the top negative 0.9.
    few = np.concatenate([pos, neg[:10]])
    few_same = np.concatenate([np.ones(5, bool), np.zeros(10, bool)])
    assert tar_at_far(few, few_same, 1e-3) == pytest.approx(1 / 5)
    # FAR 1.0 accepts everything.
    assert tar_at_far(few, few_same, 1.0) == 1.0
    with pytest.raises(ValueError, match="far"):
        tar_at_far(few, few_same, 1.5)


def test_tar_at_far_tied_negatives_respect_budget():
    # Negatives 0.8, 0.8, 0.1 x 998 -> 1 false accept allowed, but both 0.8s tie: threshold
    # must exceed 0.8, so a positive at exactly 0.8 is rejected.
    neg = np.concatenate([[0.8, 0.8], np.full(998, 0.1)])
    pos = np.array([0.85, 0.8])
    scores = np.concatenate([pos, neg])
    same = np.concatenate([np.ones(2, bool), np.zeros(1000, bool)])
    assert tar_at_far(scores, same, 1e-3) == 0.5


# --------------------------------------------------------------------------- folds


def test_assign_folds_contiguous_blocks():
    folds = assign_folds(6000, 10)
    assert folds.shape == (6000,)
    assert (folds[:600] == 0).all() and (folds[600:1200] == 1).all() and (folds[-600:] == 9).all()
    np.testing.assert_array_equal(assign_folds(12, 5), [0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 4, 4])
    with pytest.raises(ValueError):
        assign_folds(5, 10)
    with pytest.raises(ValueError):
        assign_folds(10, 1)
