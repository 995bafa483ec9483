"""Keras / SavedModel backend: what our own training exports (any batch size, GPU capable).

The network is traced once with a free batch dimension, so a batch of 1, 7 or 64 faces runs the
same graph (no retracing per size) and gives each face the same vector. The base class
preprocesses, splits into ``max_batch`` chunks and L2-normalises, as for every backend.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .base import Embedder, InputConvention


class KerasEmbedder(Embedder):
    """Loads a ``.keras`` file or a SavedModel folder (its ``serving_default`` signature)."""

    def __init__(self, path: Path, *, name: str, dim: int, convention: InputConvention, max_batch: int = 64) -> None:
        path = Path(path)
        if not path.exists():
            raise ModelError(f"Model {path} not found.")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        self.name, self.dim, self.convention, self.max_batch = name, dim, convention, max_batch
        self._tf = tf
        try:
            if path.is_dir():
                self._call = self._load_savedmodel(path)
            else:
                import keras

                self._call = self._wrap_keras(keras.models.load_model(path, compile=False))
        except ModelError:
            raise
        except Exception as exc:  # Keras/TF raise many kinds on a corrupt or foreign file
            raise ModelError(f"Cannot load model {path}: {exc}") from exc
        self._check_dim(path)

    @classmethod
    def from_model(
        cls, model, *, name: str, dim: int, convention: InputConvention, max_batch: int = 64
    ) -> KerasEmbedder:
        """An embedder around an in-memory Keras model (to measure a model before exporting it)."""
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        self = cls.__new__(cls)
        self.name, self.dim, self.convention, self.max_batch = name, dim, convention, max_batch
        self._tf = tf
        self._call = self._wrap_keras(model)
        self._check_dim(name)
        return self

    def _input_shape(self) -> list[int]:
        size = self.convention.size
        return [3, size, size] if self.convention.layout == "NCHW" else [size, size, 3]

    def _wrap_keras(self, model):
        tf = self._tf
        self._keep_alive = model
        spec = tf.TensorSpec([None, *self._input_shape()], tf.float32)
        return tf.function(lambda batch: model(batch, training=False), input_signature=[spec])

    def _load_savedmodel(self, path: Path):
        tf = self._tf
        loaded = tf.saved_model.load(str(path))
        if "serving_default" not in loaded.signatures:
            raise ModelError(f"SavedModel {path} has no serving_default signature.")
        signature = loaded.signatures["serving_default"]
        self._keep_alive = loaded
        # Signatures take keyword arguments only: find the one input's name.
        _, kwargs = signature.structured_input_signature
        if len(kwargs) != 1:
            raise ModelError(f"SavedModel {path} takes {len(kwargs)} inputs; an embedder takes one.")
        input_name = next(iter(kwargs))
        output_key = next(iter(signature.structured_outputs))
        return lambda batch: signature(**{input_name: tf.constant(batch)})[output_key]

    def _check_dim(self, source) -> None:
        probe = np.zeros((1, *self._input_shape()), np.float32)
        out = np.asarray(self._call(probe))
        if out.ndim != 2 or out.shape[1] != self.dim:
            raise ModelError(f"{source} produces vectors of shape {out.shape[1:]} but its metadata says {self.dim}-d.")

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self._call(batch))
