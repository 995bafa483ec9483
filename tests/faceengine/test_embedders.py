"""The embedder interface and its three backends (TFLite, Keras/SavedModel, ONNX)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from faceengine.embedders.base import Embedder, InputConvention
from faceengine.embedders.registry import (
    ModelSpec,
    build_embedder,
    load_model_spec,
    save_model_spec,
)
from faceengine.errors import ModelError


class LinearEmbedder(Embedder):
    """A fake network: a fixed random projection of the preprocessed pixels."""

    def __init__(self, fixed_batch=None, dim=8):
        self.name, self.dim, self.convention = "fake", dim, InputConvention()
        self.fixed_batch = fixed_batch
        self.batches = []
        self.weights = np.random.default_rng(1).normal(size=(112 * 112 * 3, dim)).astype(np.float32)

    def _forward(self, batch):
        self.batches.append(batch.shape[0])
        return batch.reshape(len(batch), -1) @ self.weights


def _faces(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 112, 112, 3), dtype=np.uint8)


def test_output_is_unit_length_and_per_face():
    embedder = LinearEmbedder()
    faces = _faces(5)
    vectors = embedder.embed(faces)
    assert vectors.shape == (5, 8)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Embedding one face alone gives the same vector as inside a batch.
    np.testing.assert_allclose(embedder.embed(faces[2:3])[0], vectors[2], atol=1e-5)


def test_fixed_batch_is_padded_and_trimmed():
    embedder = LinearEmbedder(fixed_batch=2)
    vectors = embedder.embed(_faces(3))
    assert vectors.shape == (3, 8)
    assert embedder.batches == [2, 2]


def test_flip_sums_face_and_mirror():
    embedder = LinearEmbedder()
    faces = _faces(2)
    raw = embedder._embed_raw(faces) + embedder._embed_raw(faces[:, :, ::-1])
    expected = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    np.testing.assert_allclose(embedder.embed(faces, flip=True), expected, atol=1e-5)
    assert not np.allclose(embedder.embed(faces, flip=True), embedder.embed(faces), atol=1e-3)


def test_wrong_face_shape_rejected():
    with pytest.raises(ValueError, match="112"):
        LinearEmbedder().embed(np.zeros((1, 100, 100, 3), np.uint8))


def test_no_faces_gives_empty_matrix():
    assert LinearEmbedder().embed(np.zeros((0, 112, 112, 3), np.uint8)).shape == (0, 8)


def test_convention_preprocess_bgr_nchw():
    convention = InputConvention(color="BGR", mean=127.5, std=127.5, layout="NCHW")
    face = np.zeros((1, 112, 112, 3), np.uint8)
    face[..., 0] = 255  # red
    batch = convention.preprocess(face)
    assert batch.shape == (1, 3, 112, 112)
    assert batch[0, 2].max() == pytest.approx(1.0) and batch[0, 0].max() == pytest.approx(-1.0)


def test_model_spec_round_trip(tmp_path):
    spec = ModelSpec(
        name="mine",
        backend="onnx",
        filename="mine.onnx",
        dim=512,
        convention=InputConvention(color="BGR", std=127.5, layout="NCHW"),
        verification_threshold=0.3,
    )
    save_model_spec(spec, tmp_path)
    assert load_model_spec("mine", tmp_path) == spec
    with pytest.raises(ModelError, match="Unknown model"):
        load_model_spec("other", tmp_path)
    (tmp_path / "bad.json").write_text(json.dumps({"name": "bad", "backend": "caffe"}))
    with pytest.raises(ModelError, match="backend"):
        load_model_spec("bad", tmp_path)


def test_missing_model_file_is_a_clear_error(tmp_path, default_spec):
    with pytest.raises(ModelError, match="fetch_models"):
        build_embedder(default_spec, tmp_path)


# --- real backends ------------------------------------------------------------------------


def test_default_tflite_model(default_embedder):
    assert (default_embedder.name, default_embedder.dim) == ("mobilefacenet", 192)
    faces = _faces(3, seed=3)
    together = default_embedder.embed(faces)
    alone = np.stack([default_embedder.embed(face[None])[0] for face in faces])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_fixed_batch_file_is_freed_without_changing_its_vectors(default_embedder, default_spec):
    """The file is compiled for batches of 2; after the in-memory rewrite one face costs one
    face, and the vectors are exactly the original interpreter's."""
    from faceengine.embedders.tflite import make_interpreter
    from tests.conftest import model_dir

    assert default_embedder.fixed_batch is None
    original = make_interpreter(model_dir() / default_spec.filename)
    original.allocate_tensors()
    assert list(original.get_input_details()[0]["shape"]) == [2, 112, 112, 3]
    faces = _faces(2, seed=4)
    original.set_tensor(original.get_input_details()[0]["index"], default_spec.convention.preprocess(faces))
    original.invoke()
    expected = original.get_tensor(original.get_output_details()[0]["index"])
    expected = expected / np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(default_embedder.embed(faces[:1])[0], expected[0], atol=1e-5)
    np.testing.assert_allclose(default_embedder.embed(faces), expected, atol=1e-5)


def _tiny_keras_model():
    import keras

    inputs = keras.Input((112, 112, 3))
    x = keras.layers.Conv2D(4, 3, strides=4, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(16)(x)
    return keras.Model(inputs, outputs)


def test_keras_file_backend(tmp_path):
    model = _tiny_keras_model()
    model.save(tmp_path / "tiny.keras")
    spec = ModelSpec(name="tiny", backend="keras", filename="tiny.keras", dim=16)
    embedder = build_embedder(spec, tmp_path)
    faces = _faces(3)
    expected = np.array(model(spec.convention.preprocess(faces)))
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(embedder.embed(faces), expected, atol=1e-4)


def test_savedmodel_backend(tmp_path):
    model = _tiny_keras_model()
    model.export(str(tmp_path / "tiny_saved"))
    spec = ModelSpec(name="tiny", backend="savedmodel", filename="tiny_saved", dim=16)
    embedder = build_embedder(spec, tmp_path)
    faces = _faces(2)
    expected = np.array(model(spec.convention.preprocess(faces)))
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(embedder.embed(faces), expected, atol=1e-4)


def test_onnx_backend_with_insightface_convention(tmp_path):
    """An insightface-style ONNX file: NCHW, BGR, (x-127.5)/127.5, dynamic batch."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(2).normal(size=(3 * 112 * 112, 12)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input.1"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "W"], ["683"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["None", 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["None", 12])],
        [numpy_helper.from_array(weights, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "tiny.onnx"))
    convention = InputConvention(color="BGR", mean=127.5, std=127.5, layout="NCHW")
    spec = ModelSpec(name="tiny-onnx", backend="onnx", filename="tiny.onnx", dim=12, convention=convention)
    embedder = build_embedder(spec, tmp_path)
    faces = _faces(3)
    expected = convention.preprocess(faces).reshape(3, -1) @ weights
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(embedder.embed(faces), expected, atol=1e-4)
