"""IResNet (insightface ``arcface_torch/backbones/iresnet.py``) for 112x112 faces.

Improved residual units: BN -> conv3x3 -> BN -> act -> conv3x3(stride) -> BN, plus the
shortcut (1x1 conv + BN when the shape changes). Stem: conv3x3 stride 1 + BN + act; four stages
of 64/128/256/512 channels, each starting with a stride-2 unit (112 -> 56 -> 28 -> 14 -> 7).
"""

from __future__ import annotations

import keras
from keras import layers

from .layers import activation, batch_norm, check_activation, conv, embedding_head

DEPTHS = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
}
WIDTHS = (64, 128, 256, 512)


def _unit(x, filters: int, stride: int, act: str, name: str):
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = conv(x, filters, 1, stride, f"{name}_down_conv")
        shortcut = batch_norm(shortcut, f"{name}_down_bn")
    y = batch_norm(x, f"{name}_bn1")
    y = conv(y, filters, 3, 1, f"{name}_conv1")
    y = batch_norm(y, f"{name}_bn2")
    y = activation(y, act, f"{name}_act")
    y = conv(y, filters, 3, stride, f"{name}_conv2")
    y = batch_norm(y, f"{name}_bn3")
    return layers.Add(name=f"{name}_add")([shortcut, y])


def iresnet(
    depth_name: str,
    *,
    embedding_size: int = 512,
    input_size: int = 112,
    activation_name: str = "prelu",
    dropout: float = 0.0,
) -> keras.Model:
    """An IResNet embedding model: normalised NHWC float images -> un-normalised embedding."""
    if depth_name not in DEPTHS:
        raise ValueError(f"unknown IResNet {depth_name!r}; known: {sorted(DEPTHS)}")
    check_activation(activation_name)
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = conv(inputs, WIDTHS[0], 3, 1, "stem_conv")
    x = batch_norm(x, "stem_bn")
    x = activation(x, activation_name, "stem_act")
    for stage, (units, width) in enumerate(zip(DEPTHS[depth_name], WIDTHS, strict=True), start=1):
        for unit in range(units):
            x = _unit(x, width, 2 if unit == 0 else 1, activation_name, f"stage{stage}_unit{unit + 1}")
    outputs = embedding_head(x, embedding_size, dropout)
    return keras.Model(inputs, outputs, name=depth_name)
