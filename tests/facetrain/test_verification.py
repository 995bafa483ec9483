"""In-training verification: the engine's protocol on embeddings of the backbone being trained,
and LFW photos aligned through the engine's real MTCNN + template."""

from __future__ import annotations

import numpy as np
import pytest

from faceengine.evaluation.datasets import ImageRef, PairSet
from facetrain.verification import VerificationSet, embed_faces, evaluate_sets, from_pairset
from tests.conftest import model_dir, require_file


class ColourBackbone:
    """A stand-in network: the embedding is the mean colour minus grey, left half weighted."""

    def __init__(self):
        self.calls = 0

    def __call__(self, batch, training=False):
        self.calls += 1
        assert training is False
        left = batch[:, :, : batch.shape[2] // 2].mean(axis=(1, 2))
        right = batch[:, :, batch.shape[2] // 2 :].mean(axis=(1, 2))
        return np.concatenate([left, 0.1 * right], axis=1)


def coloured(colour, size=8):
    face = np.full((size, size, 3), 127, np.uint8)
    face[:, : size // 2] = colour
    return face


def test_protocol_on_separable_embeddings_and_flip_sum():
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    faces = np.stack([coloured(c) for c in colours for _ in range(5)])
    labels = np.repeat(np.arange(4), 5)
    pairs = np.array([(i, j) for i in range(20) for j in range(i + 1, 20)])
    same = labels[pairs[:, 0]] == labels[pairs[:, 1]]
    vset = VerificationSet("colours", faces, pairs, same, np.arange(len(pairs)) % 10)
    backbone = ColourBackbone()
    result = evaluate_sets(backbone, [vset], batch_size=8)["colours"]
    assert result["accuracy"] == 1.0 and result["pairs"] == len(pairs)
    assert backbone.calls == 2 * 3  # 20 faces in batches of 8, each also mirrored
    # Flip adds the mirror image's embedding: left and right halves swap before the sum.
    plain = embed_faces(ColourBackbone(), faces[:1], flip=False)
    flipped = embed_faces(ColourBackbone(), faces[:1], flip=True)
    assert not np.allclose(plain, flipped)
    assert np.allclose(np.linalg.norm(flipped, axis=1), 1.0)


def test_bin_images_are_decoded_and_resized_without_alignment():
    import cv2

    _ok, data = cv2.imencode(".png", np.full((112, 112, 3), 200, np.uint8))
    refs = [ImageRef(key=f"b/{i}", data=data.tobytes()) for i in range(20)]
    pairset = PairSet("b", refs, np.arange(20).reshape(-1, 2), np.arange(10) % 2 == 0, np.arange(10))
    vset = from_pairset(pairset, 64)
    assert vset.faces.shape == (20, 64, 64, 3) and vset.fallbacks == 0
    assert np.all(vset.faces == 200)


@pytest.mark.slow
def test_lfw_photos_aligned_by_the_engine_and_cached(tmp_path):
    """A few real LFW pairs through the engine's detector: crops come out aligned and cached."""
    pairs_txt = require_file("lfw/pairs.txt")
    from faceengine.align import ARCFACE_TEMPLATE
    from faceengine.detection import DetectorConfig, FaceDetector
    from faceengine.evaluation.datasets import read_lfw
    from facetrain.data.folder import engine_aligner

    full = read_lfw(pairs_txt.parent)
    keep = np.concatenate([np.flatnonzero(full.same)[:3], np.flatnonzero(~full.same)[:3]])
    used = sorted(set(full.pairs[keep].ravel().tolist()))
    remap = {old: new for new, old in enumerate(used)}
    small = PairSet(
        "lfw_small",
        [full.images[i] for i in used],
        np.vectorize(remap.get)(full.pairs[keep]),
        full.same[keep],
        np.arange(6) % 2,
    )
    calls = []
    align = engine_aligner(FaceDetector(DetectorConfig(cache_dir=model_dir() / "mtcnn")), 112)

    def counting(data):
        calls.append(1)
        return align(data)

    vset = from_pairset(small, 112, counting, cache=tmp_path / "cache")
    assert vset.fallbacks == 0 and len(calls) == len(used)
    assert len(list((tmp_path / "cache").rglob("*.png"))) == len(used)
    # Aligned: the eyes sit where the template puts them, so the eye rows are darker than the
    # cheeks below them on average over these faces.
    eye_row = int(ARCFACE_TEMPLATE[0, 1])
    gray = vset.faces.mean(axis=3)
    assert gray[:, eye_row - 2 : eye_row + 3, 30:82].mean() < gray[:, eye_row + 12 : eye_row + 17, 30:82].mean()
    again = from_pairset(small, 112, counting, cache=tmp_path / "cache")
    assert len(calls) == len(used)  # read back from the cache
    np.testing.assert_array_equal(again.faces, vset.faces)
