"""The ArcFace margin head: additive angular margin softmax logits and its relatives.

One formula covers the family (insightface's "combined margin"): for the true class the cosine
cos(theta) becomes ``cos(m1 * theta + m2) - m3``, every logit is then scaled by ``s``.
(m1, m2, m3) = (1, 0.5, 0) is ArcFace, (1, 0, 0.35) CosFace, (1.35, 0, 0) SphereFace-like.

Two guards keep the target logit monotonic in theta, which the plain formula is not once
``m1 * theta + m2`` passes pi (cos turns back up, rewarding a *worse* angle):

* ``easy_margin``: only apply the margin where cos(theta) > 0, else keep cos(theta);
* otherwise (default): where ``m1 * theta + m2 > pi`` use the linear fallback
  ``cos(theta) - m3 - m2 * sin(m2)`` from the ArcFace paper / insightface code
  (``cos - mm`` with ``mm = sin(pi - m) * m``; sin(pi - m) = sin(m)).

Written in ``keras.ops`` only, so the same head trains on the TensorFlow and the JAX backend.
All maths runs in float32 whatever the inputs' dtype: under mixed precision the embeddings
arrive as float16, where ``acos`` near +-1 and ``s * cos`` (64 * 1 fits, but its softmax
does not) lose too much. Cosines are clipped to [-1 + eps, 1 - eps] before acos, whose
gradient is infinite at +-1.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from .backbones.layers import WEIGHT_DECAY
from .margin import MarginConfig

__all__ = ["ArcMarginHead", "MarginConfig", "cosine_logits", "margin_logits"]

_EPS = 1e-7


def cosine_logits(embeddings, weights):
    """cos(theta) between each embedding (n, d) and each class centre (d, classes), in float32."""
    x = ops.cast(embeddings, "float32")
    w = ops.cast(weights, "float32")
    x = x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=1, keepdims=True), 1e-24))
    w = w / ops.sqrt(ops.maximum(ops.sum(ops.square(w), axis=0, keepdims=True), 1e-24))
    return ops.clip(ops.matmul(x, w), -1.0, 1.0)


def margin_logits(cosine, labels, config: MarginConfig):
    """Scaled logits (n, classes) from cosines (n, classes) and integer labels (n,)."""
    cosine = ops.cast(cosine, "float32")
    labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
    one_hot = ops.one_hot(labels, ops.shape(cosine)[1], dtype="float32")
    # The target cosine as a masked sum: one matmul-shaped op on every backend (a gather with
    # batch dims lowers differently on each, and its gradient is a scatter).
    target = ops.sum(cosine * one_hot, axis=1)  # (n,)
    theta = ops.arccos(ops.clip(target, -1.0 + _EPS, 1.0 - _EPS))
    angle = config.m1 * theta + config.m2
    with_margin = ops.cos(angle) - config.m3
    if config.easy_margin:
        new_target = ops.where(target > 0.0, with_margin, target)
    else:
        fallback = target - config.m3 - config.m2 * math.sin(config.m2)
        new_target = ops.where(angle <= math.pi, with_margin, fallback)
    logits = cosine + one_hot * ops.expand_dims(new_target - target, 1)
    return config.s * logits


@keras.saving.register_keras_serializable(package="facetrain")
class ArcMarginHead(keras.layers.Layer):
    """Class centres (embedding_size x classes) plus the margin; call([embeddings, labels]).

    Training-only: it is never part of the exported embedding model. Its weights stay float32
    under mixed precision (``dtype="float32"``) so the class centres and logits never round.
    """

    def __init__(self, classes: int, config: MarginConfig | None = None, **kwargs) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.classes = int(classes)
        self.config = config or MarginConfig()

    def build(self, input_shape) -> None:
        embedding_shape = input_shape[0]
        self.centres = self.add_weight(
            name="centres",
            shape=(int(embedding_shape[-1]), self.classes),
            initializer=keras.initializers.RandomNormal(stddev=0.01),
            trainable=True,
            regularizer=keras.regularizers.L2(WEIGHT_DECAY / 2),
        )

    def call(self, inputs, training=None):
        embeddings, labels = inputs
        return margin_logits(cosine_logits(embeddings, self.centres), labels, self.config)

    def cosines(self, embeddings):
        """Plain cosines to every class centre, no margin: what prediction uses."""
        return cosine_logits(embeddings, self.centres)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"classes": self.classes, "margin": self.config.to_dict()})
        return config

    @classmethod
    def from_config(cls, config: dict):
        margin = MarginConfig(**config.pop("margin"))
        return cls(config=margin, **config)
