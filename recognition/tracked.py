"""Recognition of a stream of frames (the camera, a video): detect, track, embed only the
tracks that need it, match those against the gallery, and let each track vote.

The same gallery and 1:N threshold as photo jobs (``members.selectors``), searched only for the
faces the tracker asks to re-embed (faceengine.tracking), so a face that stays in view costs a
detection per frame and an embedding now and then. Detection is the normal pass only: a frame
without a face is common in a stream and does not get the thorough pass a photo gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from faceengine.tracking import Identity, Track, Tracker, face_signature
from facesite import engine


@dataclass(frozen=True)
class TrackedFace:
    """One face of a frame: its box, its track and the track's smoothed identity."""

    box: tuple[float, float, float, float]
    score: float
    track: Track
    identity: Identity
    embedded: bool  # whether this frame embedded it (or reused the track's last embedding)


@dataclass(frozen=True)
class FrameResult:
    faces: list[TrackedFace]
    embedded: int
    threshold: float | None


def recognise_frame(tracker: Tracker, rgb: np.ndarray, frame: int) -> FrameResult:
    """Detect the faces of one frame, continue the tracks and vote for the faces that need it."""
    from members.selectors import gallery_for_model, identification_bar

    recognizer = engine.recognizer()
    found = recognizer.detector.detect(rgb)
    assignments = tracker.update([face.box for face in found], frame, [face_signature(rgb, face.box) for face in found])
    tracks = {a.detection: a.track for a in assignments}
    todo = [a for a in assignments if a.needs_embedding]
    threshold = None
    if todo:
        vectors = recognizer.embed_faces(rgb, [found[a.detection] for a in todo])
        gallery = gallery_for_model(model_name=recognizer.model_name, dim=recognizer.dim)
        threshold = identification_bar(
            model_name=recognizer.model_name, gallery_size=len(gallery), match=None
        ).threshold
        for assignment, vector, matches in zip(todo, vectors, gallery.search(vectors, k=1), strict=True):
            similarity = float(matches[0].similarity) if matches else None
            label: Any = matches[0].label if matches and similarity is not None and similarity >= threshold else None
            vote = None if label is None else int(label)
            tracks[assignment.detection] = tracker.record(assignment.track, vector, vote, similarity, frame)
    faces = [
        TrackedFace(
            box=tuple(float(v) for v in found[a.detection].box),  # type: ignore[arg-type]
            score=float(found[a.detection].score),
            track=tracks[a.detection],
            identity=tracks[a.detection].identity,
            embedded=a.needs_embedding,
        )
        for a in assignments
    ]
    return FrameResult(faces, len(todo), threshold)
