"""What a training run is configured with and what it returns, shared by both trainers.

No TensorFlow and no Keras here: the TensorFlow trainer (``trainer.py``) and the backend-neutral
one (``keras_trainer.py``) both read it, and so do the benchmarks before a backend is chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .data.convention import MEAN, STD
from .margin import MarginConfig

__all__ = ["CONVENTION", "TrainConfig", "TrainResult"]

CONVENTION = {"color": "RGB", "mean": MEAN, "std": STD, "layout": "NHWC"}


@dataclass
class TrainConfig:
    out: Path
    backbone: str = "iresnet50"
    embedding_size: int = 512
    input_size: int = 112
    activation: str = "prelu"
    dropout: float = 0.0
    margin: MarginConfig = field(default_factory=MarginConfig)
    epochs: float = 1.0
    batch_size: int = 128  # global: split over the replicas
    lr: float = 0.1
    momentum: float = 0.9
    schedule: str = "poly"
    warmup_epochs: float = 0.0
    lr_steps: Sequence[int] = ()  # step schedule boundaries
    max_steps: int | None = None  # caps epochs * steps_per_epoch
    mixed_precision: bool = False
    # Force a Keras dtype policy ("float32", "mixed_float16", "mixed_bfloat16"); None picks from
    # ``mixed_precision`` and the devices present.
    precision: str | None = None
    eval_every: int = 2000
    log_every: int = 50
    flip: bool = True
    seed: int = 0
    keep_checkpoints: int = 3
    # Every BatchNormalization of the backbone gets this running-average momentum (insightface's
    # 0.9) unless None. Keras' 0.99 leaves the inference statistics far from the data for the
    # first thousand steps, which makes every early evaluation (and short runs) meaningless.
    bn_momentum: float | None = 0.9

    def to_dict(self) -> dict:
        data = asdict(self)
        data["out"] = str(self.out)
        data["margin"] = self.margin.to_dict()
        data["lr_steps"] = list(self.lr_steps)
        return data


@dataclass
class TrainResult:
    step: int
    epoch: float
    losses: list[tuple[int, float]]  # (step, mean loss over the last log window)
    evaluations: list[dict]
    images_per_second: float
