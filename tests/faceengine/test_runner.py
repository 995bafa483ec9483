"""The benchmark runner's bookkeeping: each image embedded once, fallbacks counted."""

from __future__ import annotations

import numpy as np

from faceengine.evaluation.datasets import ImageRef, PairSet
from faceengine.evaluation.runner import evaluate_pairset
from faceengine.recognizer import PrimaryEmbedding


class ScriptedRecognizer:
    """Returns a scripted embedding and detection outcome per image (bytes = its key)."""

    dim = 2

    def __init__(self, script: dict[bytes, tuple[np.ndarray, str]], blind: np.ndarray):
        self.script, self.blind, self.calls = script, blind, []

    def embed_primary(self, data: bytes) -> PrimaryEmbedding:
        self.calls.append(data)
        vector, how = self.script[data]
        return PrimaryEmbedding(vector / np.linalg.norm(vector), None, how)

    def embed_center(self, data: bytes) -> np.ndarray:
        return self.blind


def test_each_image_embedded_once_and_outcomes_counted():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    # Images 0..3 are person A, 4..7 person B; image 3 was found only by the second pass and
    # image 7 not at all (its scripted vector plays the centre-crop fallback).
    script = {bytes([i]): (a if i < 4 else b, "detected") for i in range(8)}
    script[bytes([3])] = (a, "second_pass")
    script[bytes([7])] = (b, "fallback")
    images = [ImageRef(key=str(i), data=bytes([i])) for i in range(8)]
    pairs, same = [], []
    for fold in range(2):
        base = 0 if fold == 0 else 2
        pairs += [(base, base + 1), (base + 4, base + 5), (base, base + 4), (base + 1, base + 5)]
        same += [True, True, False, False]
    pairset = PairSet(name="toy", images=images, pairs=np.array(pairs), same=np.array(same), folds=np.repeat([0, 1], 4))
    # The blind crop of the second-pass image looks like person B: had the second pass not
    # found the face, pair (2, 3) would fail.
    recognizer = ScriptedRecognizer(script, blind=b)
    report = evaluate_pairset(pairset, recognizer)
    assert len(recognizer.calls) == 8  # one call per image, not per pair
    assert report.fallbacks == 1 and report.second_pass == 1
    assert report.pairs_with_fallback == 2  # (6, 7) and (3, 7)
    assert report.result.accuracy == 1.0
    assert report.accuracy_without_second_pass < 1.0
    data = report.as_dict()
    assert data["fallbacks"] == 1 and data["pairs"] == 8
