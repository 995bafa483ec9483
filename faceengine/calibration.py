"""Open-set calibration: the 1:N threshold for a gallery of N members from a model's impostor scores.

A stranger's face is compared with every member; it is (wrongly) named when the best of those N
scores passes the threshold. If ``S(t)`` is the share of impostor scores (a member against
somebody else's face) at or above ``t``, the chance that none of N independent impostor scores
passes is ``(1 - S(t)) ** N``, so the false-accept rate per stranger face is::

    FAR(t, N) = 1 - (1 - S(t)) ** N

and the threshold that keeps it at a target ``far`` is the impostor quantile where
``S(t) = 1 - (1 - far) ** (1 / N)``: a gallery of 5 can afford a lower bar than one of 5,000.
Scores of one probe against many members are positively correlated in practice, which makes the
real rate lower than this estimate, never higher (``benchmarks/open_set.py`` measures both).

The impostor distribution is a histogram of cosine scores, kept per match mode: ``template``
(a member's mean template against another person's face) and ``sample`` (face against face, for
the nearest-sample match). Its far tail, where the histogram holds too few scores to count, is
an exponential fitted to the measured upper tail; a Gaussian-like tail falls faster than that,
so the extrapolated threshold errs high (stricter).

Plain numpy; a calibration is a small JSON file stored with the model (see ``load_calibration``).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ModelError

BIN_WIDTH = 0.001
N_BINS = round(2 / BIN_WIDTH)  # cosine scores lie in [-1, 1]
# Below this many scores at or above t the histogram no longer counts the tail well; from there
# on the exponential fit answers.
TAIL_MIN_COUNT = 50
# The tail is fitted on the scores between this share and TAIL_MIN_COUNT / n.
TAIL_FIT_FROM = 1e-3
MATCH_MODES = ("template", "sample")
# Where the calibrations of the built-in models live (measured on LFW, committed with the code).
BUILTIN_DIR = Path(__file__).resolve().parent / "calibration_data"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ImpostorScores:
    """A histogram of impostor cosine scores: ``counts[i]`` scores in [-1 + i*w, -1 + (i+1)*w)."""

    counts: np.ndarray  # int64 (N_BINS,)
    tail_slope: float  # log S(t) = tail_intercept - tail_slope * t beyond the counted tail
    tail_intercept: float
    tail_start: float  # the score from which the fit answers

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @classmethod
    def from_counts(cls, counts: np.ndarray) -> ImpostorScores:
        counts = np.asarray(counts, np.int64)
        if counts.shape != (N_BINS,) or counts.sum() <= 0:
            raise ValueError("An impostor histogram needs N_BINS bins and at least one score.")
        slope, intercept, start = _fit_tail(counts)
        return cls(counts, slope, intercept, start)

    def survival(self, threshold: float) -> float:
        """The share of impostor scores at or above ``threshold`` (S(t))."""
        t = float(threshold)
        if t >= self.tail_start:
            return float(min(1.0, math.exp(self.tail_intercept - self.tail_slope * t)))
        edges = _edges()
        above = np.cumsum(self.counts[::-1])[::-1]  # above[i]: scores in bin i or higher
        i = int(np.clip(np.floor((t + 1) / BIN_WIDTH), 0, N_BINS - 1))
        within = (edges[i + 1] - t) / BIN_WIDTH  # the share of bin i at or above t
        count = (above[i + 1] if i + 1 < N_BINS else 0) + within * self.counts[i]
        return float(count / self.total)

    def quantile_above(self, share: float) -> float:
        """The score t where ``survival(t) == share`` (the inverse of ``survival``)."""
        share = float(share)
        if share <= 0:
            return 1.0
        tail_share = math.exp(self.tail_intercept - self.tail_slope * self.tail_start)
        if share < tail_share:
            return float(min(1.0, (self.tail_intercept - math.log(share)) / self.tail_slope))
        # Bisection on the monotone histogram survival; 40 steps are far below BIN_WIDTH.
        low, high = -1.0, self.tail_start
        for _ in range(40):
            middle = (low + high) / 2
            if self.survival(middle) > share:
                low = middle
            else:
                high = middle
        return float(high)

    def to_dict(self) -> dict:
        nonzero = np.flatnonzero(self.counts)
        first, last = int(nonzero[0]), int(nonzero[-1])
        return {"first_bin": first, "counts": self.counts[first : last + 1].tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> ImpostorScores:
        counts = np.zeros(N_BINS, np.int64)
        values = np.asarray(data["counts"], np.int64)
        first = int(data["first_bin"])
        counts[first : first + len(values)] = values
        return cls.from_counts(counts)


@dataclass(frozen=True)
class OpenSetCalibration:
    """A model's impostor scores per match mode, and where they were measured."""

    model_name: str
    dim: int
    impostors: dict[str, ImpostorScores]
    source: dict = field(default_factory=dict)  # the data set, people, faces, pairs, date

    def scores(self, match: str) -> ImpostorScores:
        if match not in self.impostors:
            raise ModelError(f"The calibration of {self.model_name} has no {match!r} scores.")
        return self.impostors[match]

    def threshold(self, gallery_size: int, far: float, match: str = "template") -> float:
        """The lowest threshold whose false-accept rate per stranger face stays at ``far``
        for a gallery of ``gallery_size`` vectors."""
        if not 0 < far < 1:
            raise ValueError(f"The target false-accept rate must be between 0 and 1, got {far}.")
        n = max(1, int(gallery_size))
        share = -math.expm1(math.log1p(-far) / n)  # 1 - (1 - far) ** (1 / n), without cancellation
        return self.scores(match).quantile_above(share)

    def false_accept_rate(self, threshold: float, gallery_size: int, match: str = "template") -> float:
        """The estimated share of strangers' faces named as somebody at ``threshold``."""
        n = max(1, int(gallery_size))
        survival = self.scores(match).survival(threshold)
        if survival >= 1:
            return 1.0
        return float(-math.expm1(n * math.log1p(-survival)))

    def to_dict(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "model": self.model_name,
            "dim": self.dim,
            "bin_width": BIN_WIDTH,
            "source": self.source,
            "impostors": {mode: scores.to_dict() for mode, scores in self.impostors.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> OpenSetCalibration:
        if data.get("format") != FORMAT_VERSION or data.get("bin_width") != BIN_WIDTH:
            raise ModelError(f"Unsupported calibration format {data.get('format')!r}.")
        impostors = {mode: ImpostorScores.from_dict(scores) for mode, scores in data["impostors"].items()}
        return cls(str(data["model"]), int(data["dim"]), impostors, dict(data.get("source") or {}))


# ------------------------------------------------------------------------------ measuring


def measure_calibration(
    vectors: np.ndarray,
    labels: Sequence[str],
    *,
    model_name: str,
    enrol: int = 5,
    source: dict | None = None,
    seed: int = 0,
) -> OpenSetCalibration:
    """Impostor scores from labelled faces (one vector per photo, unit length).

    Every person with at least two photos becomes a member whose template is the mean of up to
    ``enrol`` of them (as an enrolment is); ``template`` scores are each template against every
    face of the other people, ``sample`` scores every pair of faces of different people.
    """
    vectors = np.asarray(vectors, np.float32)
    if vectors.ndim != 2 or len(vectors) != len(labels):
        raise ValueError("One vector per label is needed.")
    people, person_of = np.unique(np.asarray(labels), return_inverse=True)
    rng = np.random.default_rng(seed)
    templates, owners = [], []
    for person in range(len(people)):
        faces = np.flatnonzero(person_of == person)
        if len(faces) < 2:
            continue
        chosen = rng.permutation(faces)[: min(enrol, len(faces) - 1)]
        mean = vectors[chosen].mean(axis=0)
        templates.append(mean / (np.linalg.norm(mean) or 1.0))
        owners.append(person)
    if not templates:
        raise ValueError("Calibration needs at least one person with two or more photos.")
    if len(people) < 2:
        raise ValueError("Calibration needs photos of at least two people.")
    template_counts = _histogram_between(np.stack(templates), np.asarray(owners), vectors, person_of)
    sample_counts = _histogram_between(vectors, person_of, vectors, person_of, upper_only=True)
    summary = {
        "people": len(people),
        "members": len(templates),
        "faces": len(vectors),
        "enrol": enrol,
        "template_pairs": int(template_counts.sum()),
        "sample_pairs": int(sample_counts.sum()),
    }
    return OpenSetCalibration(
        model_name,
        int(vectors.shape[1]),
        {"template": ImpostorScores.from_counts(template_counts), "sample": ImpostorScores.from_counts(sample_counts)},
        {**summary, **(source or {})},
    )


def _histogram_between(
    left: np.ndarray,
    left_owner: np.ndarray,
    right: np.ndarray,
    right_owner: np.ndarray,
    *,
    upper_only: bool = False,
    chunk: int = 512,
) -> np.ndarray:
    """Histogram of the cosines of every (left, right) pair of different owners, in chunks so
    that memory stays at ``chunk * len(right)`` scores."""
    counts = np.zeros(N_BINS, np.int64)
    for start in range(0, len(left), chunk):
        scores = left[start : start + chunk] @ right.T
        different = left_owner[start : start + chunk, None] != right_owner[None, :]
        if upper_only:  # each unordered pair once
            rows = np.arange(start, start + len(scores))[:, None]
            different &= np.arange(len(right))[None, :] > rows
        bins = np.clip(np.floor((scores[different].astype(np.float64) + 1) / BIN_WIDTH), 0, N_BINS - 1)
        counts += np.bincount(bins.astype(np.int64), minlength=N_BINS)
    return counts


def _edges() -> np.ndarray:
    return -1 + BIN_WIDTH * np.arange(N_BINS + 1)


def _fit_tail(counts: np.ndarray) -> tuple[float, float, float]:
    """(slope, intercept, start) of log S(t) = intercept - slope * t on the upper tail."""
    total = counts.sum()
    above = np.cumsum(counts[::-1])[::-1] / total  # S at each bin's lower edge
    edges = _edges()[:-1]
    min_share = TAIL_MIN_COUNT / total
    fit = (above <= max(TAIL_FIT_FROM, 2 * min_share)) & (above >= min_share)
    if fit.sum() >= 3:
        slope, intercept = np.polyfit(edges[fit], -np.log(above[fit]), 1)
        slope, intercept = float(slope), -float(intercept)
        start = float(edges[fit][-1])
    else:
        # Too few scores for a fit: the tail starts where the scores end, falling by e every 0.01.
        last = int(np.flatnonzero(counts)[-1])
        start = float(edges[last] + BIN_WIDTH)
        slope, intercept = 100.0, math.log(max(counts[last], 1) / total) + 100.0 * start
    if slope <= 0:
        slope = 100.0
    return slope, intercept, start


# ------------------------------------------------------------------------------ storage


def calibration_path(model_dir: Path, model_name: str) -> Path:
    """A user's own calibration of a model (``calibrate_model``), beside its weights."""
    return Path(model_dir) / f"{model_name}.calibration.json"


def load_calibration(model_name: str, model_dir: Path | None = None) -> OpenSetCalibration | None:
    """The user's calibration of the model if there is one, else the built-in one, else None."""
    candidates = []
    if model_dir is not None:
        candidates.append(calibration_path(model_dir, model_name))
    candidates.append(BUILTIN_DIR / f"{model_name}.json")
    for path in candidates:
        if path.is_file():
            return _read(path, path.stat().st_mtime_ns)
    return None


def save_calibration(calibration: OpenSetCalibration, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(calibration.to_dict(), separators=(",", ":")))
    tmp.replace(path)
    _read.cache_clear()
    return path


@functools.lru_cache(maxsize=16)
def _read(path: Path, mtime_ns: int) -> OpenSetCalibration:
    """Parsed once per file version: ``mtime_ns`` is in the key so a re-measured file is re-read."""
    try:
        return OpenSetCalibration.from_dict(json.loads(Path(path).read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"Bad calibration file {path}: {exc}") from exc
