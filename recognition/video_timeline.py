"""From the tracks of a video to its appearances: who, from when to when, how sure.

A track names somebody once it has ``agree`` votes for them (faceengine.tracking); a track too
brief to agree on anybody is left out (a stray detection). Tracks of one member a short gap
apart are one appearance (the face turned away or was hidden for a moment); so are unknown
tracks a short gap apart whose mean embeddings are as close as the 1:N threshold (the same
stranger), but never two tracks seen at the same time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from faceengine.tracking import KNOWN, UNKNOWN, Track

MERGE_GAP_S = 2.0


@dataclass
class Thumb:
    """The best-scored face of a track: the detection score, the JPEG and its box."""

    score: float
    jpeg: bytes
    box: list[float]


@dataclass
class Appearance:
    member_id: int | None
    start_s: float
    end_s: float
    best_similarity: float | None
    frames: int
    tracks: list[int] = field(default_factory=list)
    vector: np.ndarray | None = None
    thumb: Thumb | None = None


def appearances_from_tracks(
    tracks: Sequence[Track], times: Sequence[float], thumbs: dict[int, Thumb], threshold: float | None
) -> list[Appearance]:
    """Appearances ordered by start; ``times[i]`` is the time of sampled frame i."""
    singles = []
    for track in tracks:
        identity = track.overall()
        if identity.state not in (KNOWN, UNKNOWN):
            continue
        singles.append(
            Appearance(
                member_id=None if identity.label is None else int(identity.label),  # type: ignore[call-overload]
                start_s=float(times[track.first_frame]),
                end_s=float(times[track.last_frame]),
                best_similarity=identity.similarity,
                frames=track.last_frame - track.first_frame + 1,
                tracks=[track.id],
                vector=track.mean_embedding,
                thumb=thumbs.get(track.id),
            )
        )
    singles.sort(key=lambda a: (a.start_s, a.tracks[0]))
    merged: list[Appearance] = []
    for item in singles:
        target = next((m for m in reversed(merged) if _joins(m, item, threshold)), None)
        if target is None:
            merged.append(item)
            continue
        target.end_s = max(target.end_s, item.end_s)
        target.frames += item.frames
        target.tracks += item.tracks
        if item.best_similarity is not None and (
            target.best_similarity is None or item.best_similarity > target.best_similarity
        ):
            target.best_similarity = item.best_similarity
        if item.thumb is not None and (target.thumb is None or item.thumb.score > target.thumb.score):
            target.thumb = item.thumb
        if target.vector is not None and item.vector is not None:
            joined = target.vector + item.vector
            target.vector = joined / max(float(np.linalg.norm(joined)), 1e-9)
    return merged


def _joins(earlier: Appearance, later: Appearance, threshold: float | None) -> bool:
    if earlier.member_id != later.member_id:
        return False
    gap = later.start_s - earlier.end_s
    if gap < 0 or gap > MERGE_GAP_S:  # at the same time: two people; far apart: two appearances
        return False
    if earlier.member_id is not None:
        return True
    if threshold is None or earlier.vector is None or later.vector is None:
        return False
    return float(np.dot(earlier.vector, later.vector)) >= threshold
