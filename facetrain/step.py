"""The ArcFace training step in Keras 3 only: backbone + margin head + softmax, compiled.

Nothing here calls TensorFlow or JAX: the model is a functional ``keras.Model`` taking
(images, labels) and giving margin logits, the loss is Keras' sparse softmax cross-entropy
(plus the backbone's and head's L2 regularisers, which ``Model.compute_loss`` adds), the
optimizer is Keras' SGD with the warm-up schedule. ``fit`` / ``train_on_batch`` run it on
either backend, with gradient computation, distribution and loss scaling done by Keras.

Mixed precision: ``mixed_bfloat16`` keeps float32's exponent range, so no loss scaling;
``mixed_float16`` (TensorFlow on a GPU) wraps the optimizer in a ``LossScaleOptimizer``,
whose dynamic scale keeps small float16 gradients from flushing to zero.
"""

from __future__ import annotations

import keras

from .backbones import build_backbone
from .config import TrainConfig
from .heads import ArcMarginHead
from .schedule import WarmupSchedule

__all__ = ["POLICIES", "build_backbone_for", "build_training_model", "choose_policy", "compile_training_model"]

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


def choose_policy(precision: str | None, mixed: bool, *, backend: str, accelerator: bool) -> str:
    """The dtype policy: ``precision`` when given, else float32 or the backend's mixed one.

    float16 only pays off (and only needs its loss scaling) on TensorFlow GPUs, as the
    TensorFlow trainer has always done; JAX trains in bfloat16 everywhere (tensor cores of
    A100/H100/H200 run it at float16's speed, and CPUs have bf16 kernels), as does TF on CPUs.
    """
    if precision is not None:
        if precision not in POLICIES:
            raise ValueError(f"precision must be one of {POLICIES}, got {precision!r}")
        return precision
    if not mixed:
        return "float32"
    return "mixed_float16" if backend == "tensorflow" and accelerator else "mixed_bfloat16"


def build_backbone_for(config: TrainConfig) -> keras.Model:
    backbone = build_backbone(
        config.backbone,
        embedding_size=config.embedding_size,
        input_size=config.input_size,
        activation=config.activation,
        dropout=config.dropout,
    )
    if config.bn_momentum is not None:
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = config.bn_momentum
    return backbone


def build_training_model(config: TrainConfig, classes: int) -> tuple[keras.Model, keras.Model]:
    """(training model, its backbone): [images (n, s, s, 3) float32, labels (n,) int32] -> logits."""
    backbone = build_backbone_for(config)
    images = keras.Input((config.input_size, config.input_size, 3), dtype="float32", name="image")
    labels = keras.Input((), dtype="int32", name="label")
    logits = ArcMarginHead(classes, config.margin, name="arcface")([backbone(images), labels])
    return keras.Model([images, labels], logits, name="arcface_training"), backbone


def compile_training_model(
    model: keras.Model, config: TrainConfig, *, policy: str, total_steps: int, steps_per_epoch: int
) -> WarmupSchedule:
    """SGD with momentum on the warm-up schedule; loss scaling under float16. Returns the schedule."""
    schedule = WarmupSchedule(
        config.lr,
        total_steps,
        kind=config.schedule,
        warmup_steps=int(config.warmup_epochs * steps_per_epoch),
        boundaries=config.lr_steps,
    )
    optimizer: keras.optimizers.Optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=config.momentum)
    if policy == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        # The margin softmax alone (the loss adds weight decay, which would hide its trend).
        metrics=[
            keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="softmax"),
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
        ],
        auto_scale_loss=False,
    )
    optimizer.build(model.trainable_variables)
    return schedule
