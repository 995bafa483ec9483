"""Building blocks shared by the backbones: activations, convolutions, the embedding head.

Only built-in Keras layers, so a saved ``.keras`` backbone loads anywhere without custom objects.
"""

from __future__ import annotations

import keras
from keras import layers

ACTIVATIONS = ("prelu", "leaky_relu", "relu")
# The original 2019 project's leaky-ReLU ablation; a fixed slope, unlike PReLU's learnt one.
LEAKY_SLOPE = 0.1
BN_MOMENTUM = 0.9  # PyTorch/MXNet's 0.1 running-average update, as insightface trains
BN_EPSILON = 1e-5
# L2(wd / 2) on the kernels gives the gradient wd * w: PyTorch-style coupled weight decay 5e-4.
WEIGHT_DECAY = 5e-4


def check_activation(name: str) -> str:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")
    return name


def activation(x, kind: str, name: str):
    """PReLU with one learnt slope per channel (insightface), or a fixed leaky/plain ReLU."""
    if kind == "prelu":
        return layers.PReLU(alpha_initializer=keras.initializers.Constant(0.25), shared_axes=[1, 2], name=name)(x)
    if kind == "leaky_relu":
        return layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=name)(x)
    return layers.ReLU(name=name)(x)


def batch_norm(x, name: str, *, scale: bool = True, dtype: str | None = None):
    return layers.BatchNormalization(
        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, scale=scale, name=name, **({"dtype": dtype} if dtype else {})
    )(x)


def conv(x, filters: int, kernel: int, stride: int, name: str):
    """A bias-free convolution padded like PyTorch/MXNet (pad k//2 on every side).

    Keras' ``padding="same"`` pads stride-2 convolutions on the bottom/right only, which would
    shift every feature map by half a pixel against insightface's networks.
    """
    if kernel > 1:
        x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
    return layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        padding="valid",
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=keras.regularizers.L2(WEIGHT_DECAY / 2),
        name=name,
    )(x)


def embedding_head(x, embedding_size: int, dropout: float, name: str = "embedding"):
    """insightface's "E" output: BN -> dropout -> flatten -> FC -> BN (no learnt scale).

    The last BN runs in float32 so that under mixed precision the embedding leaves the
    network in full precision, ready for the float32 margin head.
    """
    x = batch_norm(x, f"{name}_bn_in")
    if dropout > 0:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(
        embedding_size,
        kernel_initializer="glorot_normal",
        kernel_regularizer=keras.regularizers.L2(WEIGHT_DECAY / 2),
        name=f"{name}_fc",
    )(x)
    return batch_norm(x, f"{name}_bn_out", scale=False, dtype="float32")
