"""Face tracking across the frames of a camera feed or a video (plain numpy).

A face that stays in view keeps one track: each frame's detections are matched to the live
tracks by box overlap (IoU) and, failing that, by how far the centre moved. A track asks to be
embedded again only when it is still new (fewer embeddings than it needs to settle on a name),
has moved a lot since its last embedding, looks different from then (its coarse grey
``face_signature``: somebody else stepped into the same place, or the video cut to another
scene), or has not been embedded for ``reembed_every`` frames; the other frames reuse its last
embedding, so a face in view is not re-embedded every frame. A new embedding far from the
track's own (cosine under ``split_below``) is somebody else: the track ends there and a new one
starts with that face, so two people's votes are never mixed.

Each embedding's gallery match is a vote (a member's label, or None for nobody). The track's
identity is the label holding at least ``agree`` of the last ``window`` votes: one lucky frame
never names anybody, and a name does not flicker when a single frame disagrees. Until then the
track is "pending".
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np

KNOWN, UNKNOWN, PENDING = "known", "unknown", "pending"


@dataclass(frozen=True)
class TrackerConfig:
    """How detections continue tracks, when a track is re-embedded and when it is named."""

    iou_match: float = 0.3  # a detection continues a track when their boxes overlap this much
    centre_match: float = 0.6  # ...or its centre is within this many track widths of the track's
    reembed_shift: float = 0.35  # re-embed once the centre moved this many widths since the last embedding
    reembed_scale: float = 1.4  # ...or the box grew or shrank by this factor
    reembed_every: int = 10  # ...or after this many frames without one
    # ...or when the face's signature correlates less than this with the one at the last
    # embedding (measured on LFW: detector jitter of 4 px stays above 0.87; 90% of pairs of
    # different people at the same place fall below 0.63)
    reembed_likeness: float = 0.8
    split_below: float = 0.3  # a new embedding this far from the track's mean is somebody else
    agree: int = 3  # votes the identity needs among the last `window`
    window: int = 5
    max_missed: int = 3  # frames a track survives undetected before it ends

    def __post_init__(self) -> None:
        if not 1 <= self.agree <= self.window:
            raise ValueError(f"agree ({self.agree}) must be between 1 and window ({self.window}).")
        if self.reembed_every < 1 or self.max_missed < 0:
            raise ValueError("reembed_every must be >= 1 and max_missed >= 0.")


@dataclass(frozen=True)
class Identity:
    """A track's smoothed identity: ``state`` is known, unknown or pending."""

    state: str
    label: Hashable | None
    similarity: float | None


@dataclass
class Track:
    """One face followed across frames. Boxes are (x, y, w, h)."""

    id: int
    box: np.ndarray
    first_frame: int
    last_frame: int
    config: TrackerConfig
    missed: int = 0
    embedding: np.ndarray | None = None
    embeddings: int = 0
    embedded_box: np.ndarray | None = None
    embedded_frame: int = -1
    signature: np.ndarray | None = None
    embedded_signature: np.ndarray | None = None
    previous_frame: int = -1  # the frame the track was seen in before this one
    votes: deque = field(default_factory=deque)
    # Every vote of the track's life (label -> count, best similarity, summed vector): what a
    # whole video needs once the track has ended.
    totals: Counter = field(default_factory=Counter)
    best: dict = field(default_factory=dict)
    vector_sum: np.ndarray | None = None

    def needs_embedding(self, frame: int) -> bool:
        if self.embedding is None or self.embedded_box is None or self.embeddings < self.config.agree:
            return True  # new: it has not had the votes it needs to settle yet
        if frame - self.embedded_frame >= self.config.reembed_every:
            return True
        old, new = self.embedded_box, self.box
        width = max(float(old[2]), 1.0)
        shift = float(np.hypot(*(_centre(new) - _centre(old)))) / width
        scale = max(float(new[2]) / width, width / max(float(new[2]), 1.0))
        if shift >= self.config.reembed_shift or scale >= self.config.reembed_scale:
            return True
        if self.signature is not None and self.embedded_signature is not None:
            return float(np.dot(self.signature, self.embedded_signature)) < self.config.reembed_likeness
        return False

    def record(self, embedding: np.ndarray, label: Hashable | None, similarity: float | None, frame: int) -> None:
        """The embedding of this frame's face and its gallery match (a vote)."""
        vector = np.asarray(embedding, np.float32)
        self.embedding, self.embeddings = vector, self.embeddings + 1
        self.embedded_box, self.embedded_frame = self.box.copy(), frame
        self.embedded_signature = self.signature
        self.vector_sum = vector.copy() if self.vector_sum is None else self.vector_sum + vector
        self.votes.append((label, similarity))
        while len(self.votes) > self.config.window:
            self.votes.popleft()
        self.totals[label] += 1
        if similarity is not None and (label not in self.best or similarity > self.best[label]):
            self.best[label] = float(similarity)

    @property
    def identity(self) -> Identity:
        """The label holding ``agree`` of the last ``window`` votes, else pending."""
        return _identity(list(self.votes), self.config.agree)

    def overall(self) -> Identity:
        """The identity over the whole life of the track (for a video, once it has ended):
        the label with the most votes, if it has at least ``agree`` of them."""
        if not self.totals:
            return Identity(PENDING, None, None)
        label, count = max(self.totals.items(), key=lambda item: (item[1], item[0] is not None))
        if count < self.config.agree:
            return Identity(PENDING, None, None)
        return Identity(KNOWN if label is not None else UNKNOWN, label, self.best.get(label))

    @property
    def mean_embedding(self) -> np.ndarray | None:
        if self.vector_sum is None:
            return None
        norm = float(np.linalg.norm(self.vector_sum))
        return self.vector_sum / norm if norm > 0 else self.vector_sum


@dataclass(frozen=True)
class Assignment:
    """A detection of this frame (by its index) and the track it belongs to."""

    detection: int
    track: Track
    needs_embedding: bool


class Tracker:
    """The live tracks of one stream; feed it each frame's boxes in order."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.tracks: list[Track] = []
        self.ended: list[Track] = []
        self._next_id = 1

    def update(
        self, boxes: Sequence[Sequence[float]] | np.ndarray, frame: int, signatures: Sequence[np.ndarray] | None = None
    ) -> list[Assignment]:
        """Match this frame's boxes (n, 4) to the tracks, start tracks for the rest, end the
        tracks missed for too long; one assignment per box, in the order given. ``signatures``
        (``face_signature`` of each box) let a track notice that its face changed."""
        detections = np.asarray(boxes, np.float64).reshape(-1, 4)
        pairs = associate([t.box for t in self.tracks], detections, self.config)
        assigned: dict[int, Track] = {}
        matched_tracks = set()
        for track_index, detection_index in pairs:
            track = self.tracks[track_index]
            track.previous_frame = track.last_frame
            track.box, track.last_frame, track.missed = detections[detection_index].copy(), frame, 0
            assigned[detection_index] = track
            matched_tracks.add(track_index)
        survivors = []
        for index, track in enumerate(self.tracks):
            if index not in matched_tracks:
                track.missed += 1
                if track.missed > self.config.max_missed:
                    self.ended.append(track)
                    continue
            survivors.append(track)
        self.tracks = survivors
        for detection_index in range(len(detections)):
            if detection_index not in assigned:
                assigned[detection_index] = self._start(detections[detection_index], frame)
        if signatures is not None:
            for detection_index, track in assigned.items():
                track.signature = np.asarray(signatures[detection_index], np.float32)
        return [Assignment(i, assigned[i], assigned[i].needs_embedding(frame)) for i in range(len(detections))]

    def _start(self, box: np.ndarray, frame: int) -> Track:
        track = Track(self._next_id, box.copy(), frame, frame, self.config)
        self._next_id += 1
        self.tracks.append(track)
        return track

    def record(
        self, track: Track, embedding: np.ndarray, label: Hashable | None, similarity: float | None, frame: int
    ) -> Track:
        """Give a track this frame's embedding and vote; returns the track that got it: a new
        one when the embedding is too far from the track's own (somebody else took its place;
        the old track ends at the frame before)."""
        mean = track.mean_embedding
        vector = np.asarray(embedding, np.float32)
        if mean is not None and _cosine(mean, vector) < self.config.split_below:
            self.tracks.remove(track)
            ended_at = track.previous_frame if track.previous_frame >= track.first_frame else track.first_frame
            track.last_frame = ended_at
            self.ended.append(track)
            successor = self._start(track.box, frame)
            successor.signature = track.signature
            track = successor
        track.record(vector, label, similarity, frame)
        return track

    def finish(self) -> list[Track]:
        """End every track (the stream is over); every track ever seen, oldest first."""
        self.ended.extend(self.tracks)
        self.tracks = []
        return sorted(self.ended, key=lambda t: t.id)


def associate(tracks: Sequence[np.ndarray], detections: np.ndarray, config: TrackerConfig) -> list[tuple[int, int]]:
    """(track index, detection index) pairs: greedily by overlap first, then by the distance
    of the centres (a fast-moving face whose boxes no longer overlap), each used at most once."""
    if not len(tracks) or not len(detections):
        return []
    previous = np.asarray(tracks, np.float64).reshape(-1, 4)
    overlap = iou(previous, detections)
    pairs: list[tuple[int, int]] = []
    used_t: set[int] = set()
    used_d: set[int] = set()
    for flat in np.argsort(-overlap, axis=None):
        t, d = divmod(int(flat), overlap.shape[1])
        if overlap[t, d] < config.iou_match:
            break
        if t not in used_t and d not in used_d:
            pairs.append((t, d))
            used_t.add(t)
            used_d.add(d)
    widths = np.maximum(previous[:, 2:3], 1.0)
    distance = np.linalg.norm(_centre(previous)[:, None, :] - _centre(detections)[None, :, :], axis=2) / widths
    for flat in np.argsort(distance, axis=None):
        t, d = divmod(int(flat), distance.shape[1])
        if distance[t, d] > config.centre_match:
            break
        if t not in used_t and d not in used_d:
            pairs.append((t, d))
            used_t.add(t)
            used_d.add(d)
    return pairs


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of ``a`` (n, 4) with every box of ``b`` (m, 4)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    w = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, 0:1], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, 1:2], b[None, :, 1]), 0, None)
    inter = w * h
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def face_signature(rgb: np.ndarray, box: Sequence[float], size: int = 8) -> np.ndarray:
    """A face's coarse look: the grey box averaged into ``size`` x ``size`` cells, zero mean and
    unit norm, so the dot product of two is their correlation (1: alike)."""
    x, y, w, h = (round(float(v)) for v in box)
    x0, y0 = max(0, x), max(0, y)
    crop = np.asarray(rgb[y0 : max(y0 + 1, y + h), x0 : max(x0 + 1, x + w)], np.float32)
    grey = crop.mean(axis=2) if crop.ndim == 3 else crop
    if grey.shape[0] < size or grey.shape[1] < size:
        grey = np.repeat(np.repeat(grey, size, axis=0), size, axis=1)
    rows = np.linspace(0, grey.shape[0], size + 1).astype(int)
    cols = np.linspace(0, grey.shape[1], size + 1).astype(int)
    cells = np.add.reduceat(np.add.reduceat(grey, rows[:-1], axis=0), cols[:-1], axis=1)
    cells = (cells / np.outer(np.diff(rows), np.diff(cols))).ravel()
    cells -= cells.mean()
    norm = float(np.linalg.norm(cells))
    return (cells / norm if norm > 1e-6 else cells).astype(np.float32)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b)) / denominator if denominator > 0 else 0.0


def _centre(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64)
    return boxes[..., :2] + boxes[..., 2:4] / 2


def _identity(votes: list[tuple[Hashable | None, float | None]], agree: int) -> Identity:
    if not votes:
        return Identity(PENDING, None, None)
    counts = Counter(label for label, _ in votes)
    label, count = counts.most_common(1)[0]
    if count < agree:
        return Identity(PENDING, None, None)
    similarities = [s for lab, s in votes if lab == label and s is not None]
    similarity = float(np.mean(similarities)) if similarities else None
    return Identity(KNOWN if label is not None else UNKNOWN, label, similarity)
