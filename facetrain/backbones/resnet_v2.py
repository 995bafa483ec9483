"""ResNet-v2-m: the 2019 TF1 ArcFace project's pre-activation ResNet for 112x112 faces.

"v2" units are pre-activation (He et al., "Identity Mappings in Deep Residual Networks"):
BN -> act comes *before* each convolution and the shortcut is a pure identity, or a 1x1 conv
of the pre-activated input when the shape changes. The "m" (modified) variant keeps the
full 112x112 resolution in the stem (3x3 conv, stride 1, no max-pool) and halves it at the
first unit of each of the four stages (64/128/256/512 channels), ending at 7x7.

``resnet_v2_m_50`` uses basic units (two 3x3 convs) in [3, 4, 14, 3]: 24 units x 2 convs
+ the stem + the embedding FC = 50 weight layers. ``unit="bottleneck"`` swaps in
1x1 -> 3x3 -> 1x1 units (width/4 inside) for the ablation. The activation is a flag
(PReLU by default, leaky ReLU for the original's ablation).
"""

from __future__ import annotations

import keras
from keras import layers

from .layers import activation, batch_norm, check_activation, conv, embedding_head

DEPTHS = {"resnet_v2_m_50": (3, 4, 14, 3), "resnet_v2_m_100": (3, 13, 30, 3)}
WIDTHS = (64, 128, 256, 512)


def _basic(pre, filters: int, stride: int, act: str, name: str):
    y = conv(pre, filters, 3, 1, f"{name}_conv1")
    y = batch_norm(y, f"{name}_bn2")
    y = activation(y, act, f"{name}_act2")
    return conv(y, filters, 3, stride, f"{name}_conv2")


def _bottleneck(pre, filters: int, stride: int, act: str, name: str):
    inner = max(filters // 4, 16)
    y = conv(pre, inner, 1, 1, f"{name}_conv1")
    y = batch_norm(y, f"{name}_bn2")
    y = activation(y, act, f"{name}_act2")
    y = conv(y, inner, 3, stride, f"{name}_conv2")
    y = batch_norm(y, f"{name}_bn3")
    y = activation(y, act, f"{name}_act3")
    return conv(y, filters, 1, 1, f"{name}_conv3")


def _unit(x, filters: int, stride: int, act: str, kind: str, name: str):
    pre = batch_norm(x, f"{name}_preact_bn")
    pre = activation(pre, act, f"{name}_preact_act")
    if stride == 1 and x.shape[-1] == filters:
        shortcut = x
    else:
        shortcut = conv(pre, filters, 1, stride, f"{name}_shortcut")
    residual = (_basic if kind == "basic" else _bottleneck)(pre, filters, stride, act, name)
    return layers.Add(name=f"{name}_add")([shortcut, residual])


def resnet_v2_m(
    depth_name: str = "resnet_v2_m_50",
    *,
    embedding_size: int = 512,
    input_size: int = 112,
    activation_name: str = "prelu",
    dropout: float = 0.0,
    unit: str = "basic",
) -> keras.Model:
    """A pre-activation ResNet embedding model (normalised NHWC float images -> embedding)."""
    if depth_name not in DEPTHS:
        raise ValueError(f"unknown ResNet-v2-m {depth_name!r}; known: {sorted(DEPTHS)}")
    if unit not in ("basic", "bottleneck"):
        raise ValueError(f"unit must be 'basic' or 'bottleneck', got {unit!r}")
    check_activation(activation_name)
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = conv(inputs, WIDTHS[0], 3, 1, "stem_conv")
    for stage, (units, width) in enumerate(zip(DEPTHS[depth_name], WIDTHS, strict=True), start=1):
        for index in range(units):
            x = _unit(x, width, 2 if index == 0 else 1, activation_name, unit, f"stage{stage}_unit{index + 1}")
    # v2 ends with the BN + activation that the last unit's output has not had yet.
    x = batch_norm(x, "postnorm_bn")
    x = activation(x, activation_name, "postnorm_act")
    outputs = embedding_head(x, embedding_size, dropout)
    return keras.Model(inputs, outputs, name=f"{depth_name}_{activation_name}")
