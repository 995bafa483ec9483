"""Learning-rate schedules with a linear warm-up: poly (insightface's arcface_torch), cosine, step."""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
from keras import ops

SCHEDULES = ("poly", "cosine", "step", "constant")


@keras.saving.register_keras_serializable(package="facetrain")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """``base_lr`` reached linearly over ``warmup_steps``, then decayed until ``total_steps``.

    * poly: ``base_lr * (1 - progress) ** 2`` (arcface_torch's PolyScheduler);
    * cosine: half a cosine down to zero;
    * step: multiplied by ``gamma`` at each step in ``boundaries`` (the 2019 project's
      piecewise-constant schedule);
    * constant: no decay.
    """

    def __init__(
        self,
        base_lr: float,
        total_steps: int,
        *,
        warmup_steps: int = 0,
        kind: str = "poly",
        boundaries: Sequence[int] = (),
        gamma: float = 0.1,
    ) -> None:
        if kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {kind!r}")
        self.base_lr, self.total_steps = float(base_lr), max(int(total_steps), 1)
        self.warmup_steps, self.kind = max(int(warmup_steps), 0), kind
        self.boundaries, self.gamma = tuple(int(b) for b in boundaries), float(gamma)

    def __call__(self, step):
        # keras.ops only: the optimizer calls this inside the compiled step on every backend.
        step = ops.cast(step, "float32")
        warm = float(self.warmup_steps)
        decay_span = max(float(self.total_steps) - warm, 1.0)
        progress = ops.clip((step - warm) / decay_span, 0.0, 1.0)
        if self.kind == "poly":
            decayed = self.base_lr * (1.0 - progress) ** 2
        elif self.kind == "cosine":
            decayed = self.base_lr * 0.5 * (1.0 + ops.cos(math.pi * progress))
        elif self.kind == "step":
            passed = sum((ops.cast(step >= b, "float32") for b in self.boundaries), ops.zeros_like(step))
            decayed = self.base_lr * ops.power(self.gamma, passed)
        else:
            decayed = ops.full_like(step, self.base_lr)
        if self.warmup_steps == 0:
            return decayed
        warmup = self.base_lr * (step + 1.0) / warm
        return ops.where(step < warm, warmup, decayed)

    def get_config(self) -> dict:
        return {
            "base_lr": self.base_lr,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "kind": self.kind,
            "boundaries": list(self.boundaries),
            "gamma": self.gamma,
        }
