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

All maths runs in float32 whatever the inputs' dtype: under mixed precision the embeddings
arrive as float16, where ``acos`` near +-1 and ``s * cos`` (64 * 1 fits, but its softmax
does not) lose too much. Cosines are clipped to [-1 + eps, 1 - eps] before acos, whose
gradient is infinite at +-1.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import keras
import tensorflow as tf

from .backbones.layers import WEIGHT_DECAY

__all__ = ["ArcMarginHead", "MarginConfig", "cosine_logits", "margin_logits"]

_EPS = 1e-7


@dataclass(frozen=True)
class MarginConfig:
    """Scale and margins of the head. Defaults: ArcFace with s=64, m=0.5."""

    s: float = 64.0
    m1: float = 1.0  # multiplicative angular (SphereFace)
    m2: float = 0.5  # additive angular (ArcFace)
    m3: float = 0.0  # additive cosine (CosFace)
    easy_margin: bool = False

    def __post_init__(self) -> None:
        if self.s <= 0:
            raise ValueError(f"scale s must be positive, got {self.s}")
        if self.m1 <= 0 or self.m2 < 0 or self.m3 < 0:
            raise ValueError(f"margins must be m1 > 0, m2 >= 0, m3 >= 0; got {self.m1}, {self.m2}, {self.m3}")

    def to_dict(self) -> dict:
        return asdict(self)


def cosine_logits(embeddings: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """cos(theta) between each embedding (n, d) and each class centre (d, classes), in float32."""
    x = tf.math.l2_normalize(tf.cast(embeddings, tf.float32), axis=1, epsilon=1e-12)
    w = tf.math.l2_normalize(tf.cast(weights, tf.float32), axis=0, epsilon=1e-12)
    return tf.clip_by_value(tf.matmul(x, w), -1.0, 1.0)


def margin_logits(cosine: tf.Tensor, labels: tf.Tensor, config: MarginConfig) -> tf.Tensor:
    """Scaled logits (n, classes) from cosines (n, classes) and integer labels (n,)."""
    cosine = tf.cast(cosine, tf.float32)
    labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
    target = tf.gather(cosine, labels, axis=1, batch_dims=1)  # (n,)
    theta = tf.acos(tf.clip_by_value(target, -1.0 + _EPS, 1.0 - _EPS))
    angle = config.m1 * theta + config.m2
    with_margin = tf.cos(angle) - config.m3
    if config.easy_margin:
        new_target = tf.where(target > 0.0, with_margin, target)
    else:
        fallback = target - config.m3 - config.m2 * math.sin(config.m2)
        new_target = tf.where(angle <= math.pi, with_margin, fallback)
    one_hot = tf.one_hot(labels, tf.shape(cosine)[1], on_value=True, off_value=False)
    logits = tf.where(one_hot, new_target[:, None], cosine)
    return config.s * logits


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
