"""Keras / SavedModel backend: what our own training exports (any batch size, GPU capable)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .base import Embedder, InputConvention


class KerasEmbedder(Embedder):
    """Loads a ``.keras`` file or a SavedModel folder (its ``serving_default`` signature)."""

    def __init__(self, path: Path, *, name: str, dim: int, convention: InputConvention,
                 max_batch: int = 64) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        path = Path(path)
        if not path.exists():
            raise ModelError(f"Model {path} not found.")
        self.name, self.dim, self.convention, self.max_batch = name, dim, convention, max_batch
        self._tf = tf
        if path.is_dir():
            loaded = tf.saved_model.load(str(path))
            signature = loaded.signatures["serving_default"]
            self._keep_alive = loaded
            output_key = next(iter(signature.structured_outputs))
            self._call = lambda batch: signature(tf.constant(batch))[output_key]
        else:
            import keras

            model = keras.models.load_model(path, compile=False)
            self._keep_alive = model
            function = tf.function(lambda batch: model(batch, training=False), reduce_retracing=True)
            self._call = function

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self._call(batch))
