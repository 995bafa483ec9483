"""Backbones by name: ``build_backbone("iresnet50")`` -> a Keras embedding model.

Every backbone maps float32 NHWC images already normalised as (x - 127.5) / 128 to an
un-normalised embedding; the engine L2-normalises at serving time.
"""

from __future__ import annotations

import keras

BACKBONES = ("resnet_v2_m_50", "iresnet50", "iresnet100", "mobilefacenet")

__all__ = ["BACKBONES", "build_backbone"]


def build_backbone(
    name: str, *, embedding_size: int = 512, input_size: int = 112, activation: str = "prelu", dropout: float = 0.0
) -> keras.Model:
    """Build a backbone by name (see ``BACKBONES``); the activation applies to the ResNets."""
    if name.startswith("iresnet"):
        from .iresnet import iresnet

        return iresnet(
            name, embedding_size=embedding_size, input_size=input_size, activation_name=activation, dropout=dropout
        )
    if name.startswith("resnet_v2_m"):
        from .resnet_v2 import resnet_v2_m

        return resnet_v2_m(
            name, embedding_size=embedding_size, input_size=input_size, activation_name=activation, dropout=dropout
        )
    if name == "mobilefacenet":
        # Written alongside the default-model import (its layer names match the TFLite file).
        from .mobilefacenet import mobilefacenet

        return mobilefacenet(embedding_size=embedding_size, input_size=input_size)
    raise ValueError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}")
