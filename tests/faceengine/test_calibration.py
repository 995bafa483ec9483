"""Open-set calibration: the best-of-N arithmetic, the tail, storage; and the built-in files."""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import numpy as np
import pytest

from faceengine import calibration as cal
from faceengine.errors import ModelError


def gaussian_scores(n: int = 2_000_000, sd: float = 0.1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, sd, n)


def histogram(scores: np.ndarray) -> cal.ImpostorScores:
    bins = np.clip(np.floor((scores + 1) / cal.BIN_WIDTH), 0, cal.N_BINS - 1).astype(int)
    return cal.ImpostorScores.from_counts(np.bincount(bins, minlength=cal.N_BINS))


def calibration_of(scores: np.ndarray) -> cal.OpenSetCalibration:
    impostors = histogram(scores)
    return cal.OpenSetCalibration("m", 8, {"template": impostors, "sample": impostors})


def test_survival_follows_the_scores_counted():
    scores = gaussian_scores()
    impostors = histogram(scores)
    for t in (-0.1, 0.0, 0.1, 0.2, 0.3):
        assert impostors.survival(t) == pytest.approx(np.mean(scores >= t), abs=2e-4)
    assert impostors.survival(-1.0) == pytest.approx(1.0)


def test_threshold_rises_with_the_gallery_size_and_meets_the_target():
    calibration = calibration_of(gaussian_scores())
    thresholds = [calibration.threshold(n, 0.01) for n in (1, 10, 100, 1000, 10_000, 1_000_000)]
    assert thresholds == sorted(thresholds) and len(set(thresholds)) == len(thresholds)
    for n, t in zip((1, 10, 100, 1000), thresholds, strict=False):
        assert calibration.false_accept_rate(t, n) == pytest.approx(0.01, rel=0.05)
    # One member: the 99th percentile of the impostor scores (0.1 * 2.326 for this Gaussian).
    assert thresholds[0] == pytest.approx(0.1 * NormalDist().inv_cdf(0.99), abs=0.002)


def test_the_best_of_n_strangers_scores_pass_at_the_target_rate():
    """Simulated galleries: a stranger's face against N members, the best score against the
    threshold; the share that passes is the target the threshold was calibrated for."""
    calibration = calibration_of(gaussian_scores())
    rng = np.random.default_rng(1)
    for n in (10, 300):
        threshold = calibration.threshold(n, 0.05)
        best = rng.normal(0.0, 0.1, (20_000, n)).max(axis=1)
        assert np.mean(best >= threshold) == pytest.approx(0.05, abs=0.006)


def test_the_far_tail_is_extrapolated_on_the_strict_side():
    """Past the counted scores the exponential fit answers; a Gaussian tail falls faster, so the
    extrapolated threshold is at or above the true quantile (never lets more strangers in)."""
    calibration = calibration_of(gaussian_scores(n=200_000))
    for n in (10_000, 1_000_000, 100_000_000):
        share = -math.expm1(math.log1p(-0.01) / n)
        truth = -0.1 * NormalDist().inv_cdf(share)
        threshold = calibration.threshold(n, 0.01)
        assert truth - 0.005 <= threshold
        if n <= 1_000_000:  # and not absurdly strict within two decades of the counted scores
            assert threshold < truth + 0.1
    assert calibration.threshold(10**12, 0.01) <= 1.0


def test_measure_counts_every_impostor_pair_once():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16))
    labels = ["a"] * 3 + ["b"] * 3 + ["c"] * 2 + ["d"]  # d: one photo, a stranger only
    vectors = np.stack([centres["abcd".index(label)] + 0.1 * rng.normal(size=16) for label in labels])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    measured = cal.measure_calibration(vectors, labels, model_name="m", enrol=5)
    # Templates of a, b, c (two or more photos) against every face of the others.
    assert measured.source["members"] == 3
    assert measured.source["template_pairs"] == (9 - 3) + (9 - 3) + (9 - 2)
    # Unordered pairs of faces of different people: all pairs minus those within a person.
    assert measured.source["sample_pairs"] == 36 - (3 + 3 + 1)
    assert measured.dim == 16


def test_measure_needs_a_member_and_two_people():
    vectors = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="two or more photos"):
        cal.measure_calibration(vectors, ["a", "b", "c"], model_name="m")
    with pytest.raises(ValueError, match="two people"):
        cal.measure_calibration(vectors, ["a", "a", "a"], model_name="m")


def test_a_users_calibration_beside_the_model_wins_and_round_trips(tmp_path):
    calibration = calibration_of(gaussian_scores(n=100_000))
    path = cal.save_calibration(calibration, cal.calibration_path(tmp_path, "m"))
    loaded = cal.load_calibration("m", tmp_path)
    assert loaded is not None and loaded.model_name == "m"
    assert loaded.threshold(100, 0.01) == pytest.approx(calibration.threshold(100, 0.01))
    assert json.loads(path.read_text())["format"] == cal.FORMAT_VERSION
    assert cal.load_calibration("no-such-model", tmp_path) is None


def test_a_broken_calibration_file_is_a_model_error(tmp_path):
    cal.calibration_path(tmp_path, "m").write_text('{"format": 1, "bin_width": 0.001}')
    with pytest.raises(ModelError, match="Bad calibration file"):
        cal.load_calibration("m", tmp_path)
    cal.calibration_path(tmp_path, "m").write_text('{"format": 99}')
    with pytest.raises(ModelError, match="Unsupported calibration format"):
        cal.load_calibration("m", tmp_path)


@pytest.mark.parametrize("path", sorted(cal.BUILTIN_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_builtin_calibrations_describe_their_models(path):
    from faceengine.embedders.registry import BUILTIN_MODELS

    calibration = cal.load_calibration(path.stem)
    assert calibration is not None and calibration.model_name == path.stem
    assert calibration.dim == BUILTIN_MODELS[path.stem].dim
    assert calibration.source["template_pairs"] > 1_000_000  # enough for a 1e-5 quantile
    small, large = calibration.threshold(5, 0.01), calibration.threshold(5000, 0.01)
    assert 0.2 < small < large < 0.9
