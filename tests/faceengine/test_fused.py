"""The fused model: one name and one dimension over two embedders' weighted vectors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from faceengine.embedders.base import Embedder, InputConvention
from faceengine.embedders.fused import FusedEmbedder
from faceengine.embedders.registry import (
    MOBILEFACENET_SFACE,
    SFACE,
    FusedPart,
    ModelSpec,
    build_embedder,
    load_model_spec,
    save_model_spec,
)
from faceengine.errors import ModelError
from faceengine.model_fetch import is_installed
from tests.conftest import model_dir, require_yunet
from tests.fakes import lfw_photos


class Projection(Embedder):
    """A fixed random projection of the pixels: a stand-in network for the arithmetic."""

    def __init__(self, name: str, dim: int, seed: int) -> None:
        self.name, self.dim, self.convention = name, dim, InputConvention(size=16)
        self._matrix = np.random.default_rng(seed).normal(size=(16 * 16 * 3, dim)).astype(np.float32)

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        return batch.reshape(len(batch), -1) @ self._matrix


def _faces(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)


@pytest.mark.parametrize("flip", [False, True])
def test_fused_cosine_is_the_weighted_mean_of_the_parts_cosines(flip):
    a, b = Projection("a", 5, 1), Projection("b", 3, 2)
    fused = FusedEmbedder([a, b], [1.0, 0.5], name="a+b", dim=8, convention=InputConvention(size=16))
    faces = _faces(6)
    vectors = fused.embed(faces, flip=flip)
    assert vectors.shape == (6, 8)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-6)
    va, vb = a.embed(faces, flip=flip), b.embed(faces, flip=flip)
    expected = (1.0 * va @ va.T + 0.25 * vb @ vb.T) / 1.25
    np.testing.assert_allclose(vectors @ vectors.T, expected, atol=1e-5)
    assert fused.embed(faces[:0]).shape == (0, 8)


def test_fused_parts_are_checked():
    a, b = Projection("a", 5, 1), Projection("b", 3, 2)
    convention = InputConvention(size=16)
    with pytest.raises(ModelError, match="spec says 9"):
        FusedEmbedder([a, b], [1, 1], name="x", dim=9, convention=convention)
    with pytest.raises(ModelError, match="positive"):
        FusedEmbedder([a, b], [1, 0], name="x", dim=8, convention=convention)
    with pytest.raises(ModelError, match="two or more"):
        FusedEmbedder([a], [1], name="x", dim=5, convention=convention)
    with pytest.raises(ValueError, match="Expected aligned faces"):
        FusedEmbedder([a, b], [1, 1], name="x", dim=8, convention=convention).embed(np.zeros((1, 8, 8, 3), np.uint8))


def test_a_fused_spec_travels_as_json(tmp_path):
    spec = ModelSpec(
        name="mine+sface",
        backend="fused",
        filename="",
        dim=320,
        parts=(FusedPart("mobilefacenet", 1.0), FusedPart("sface", 0.8)),
    )
    save_model_spec(spec, tmp_path)
    assert json.loads((tmp_path / "mine+sface.json").read_text())["parts"][1] == {"model": "sface", "weight": 0.8}
    assert load_model_spec("mine+sface", tmp_path) == spec
    assert ModelSpec.from_dict(MOBILEFACENET_SFACE.to_dict()) == MOBILEFACENET_SFACE
    # A file written before parts existed still loads.
    plain = {k: v for k, v in SFACE.to_dict().items() if k != "parts"}
    assert ModelSpec.from_dict(plain) == SFACE
    with pytest.raises(ModelError, match="exactly when its backend is 'fused'"):
        ModelSpec.from_dict({**spec.to_dict(), "parts": []})
    with pytest.raises(ModelError, match="A fused part"):
        ModelSpec.from_dict({**spec.to_dict(), "parts": [{"name": "sface"}]})


def test_a_fused_model_of_fused_models_is_refused(tmp_path):
    inner = ModelSpec(name="inner", backend="fused", filename="", dim=320, parts=MOBILEFACENET_SFACE.parts)
    save_model_spec(inner, tmp_path)
    outer = ModelSpec(
        name="outer", backend="fused", filename="", dim=512, parts=(FusedPart("inner"), FusedPart("sface"))
    )
    with pytest.raises(ModelError, match="not from other fused ones"):
        build_embedder(outer, tmp_path)


@pytest.fixture(scope="session")
def fused_embedder():
    if not is_installed(MOBILEFACENET_SFACE, model_dir()):
        pytest.skip(f"MobileFaceNet and SFace are not both in {model_dir()}: run `manage.py fetch_models`")
    return build_embedder(MOBILEFACENET_SFACE, model_dir())


def test_the_builtin_fusion_on_real_faces(fused_embedder, recognizer, lfw_dir):
    crops = []
    for name in ("Colin_Powell", "Tony_Blair"):
        for photo in lfw_photos(lfw_dir, name)[:2]:
            primary = recognizer.embed_primary(photo.read_bytes())
            assert primary.face is not None
            crops.append(recognizer.align_face(photo.read_bytes(), [primary.face.landmarks])[0])
    faces = np.stack(crops)
    fused = fused_embedder.embed(faces, flip=True)
    assert fused.shape == (4, 320)
    (w1, w2) = (part.weight for part in MOBILEFACENET_SFACE.parts)
    c1, c2 = (part.embed(faces, flip=True) for part in fused_embedder.parts)
    expected = (w1**2 * (c1 @ c1.T) + w2**2 * (c2 @ c2.T)) / (w1**2 + w2**2)
    np.testing.assert_allclose(fused @ fused.T, expected, atol=1e-5)
    cos = fused @ fused.T
    assert min(cos[0, 1], cos[2, 3]) > MOBILEFACENET_SFACE.verification_threshold > cos[:2, 2:].max()


def test_faceengine_load_builds_the_fused_model():
    import faceengine

    if not is_installed(MOBILEFACENET_SFACE, model_dir()):
        pytest.skip(f"MobileFaceNet and SFace are not both in {model_dir()}: run `manage.py fetch_models`")
    require_yunet()
    recognizer = faceengine.load(model_dir(), model="mobilefacenet_sface")
    assert (recognizer.model_name, recognizer.dim) == ("mobilefacenet_sface", 320)
