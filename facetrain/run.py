"""One training run from plain arguments: open the data, prepare benchmarks, train.

What ``manage.py train_arcface`` calls; kept apart from the command so scripts and tests can
start a run without Django's argument parsing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .data.folder import engine_aligner
from .data.pipeline import open_training_data
from .trainer import TrainConfig, Trainer, TrainResult
from .verification import load_verification_set

logger = logging.getLogger(__name__)

EVAL_KINDS = ("lfw", "bin", "cfp-fp", "cfp-ff")


@dataclass(frozen=True)
class EvalSpec:
    """``kind:path`` on the command line, e.g. ``lfw:/data/lfw`` or ``bin:/data/agedb_30.bin``."""

    kind: str
    path: Path

    @classmethod
    def parse(cls, text: str) -> EvalSpec:
        kind, sep, path = text.partition(":")
        if not sep or kind not in EVAL_KINDS or not path:
            raise ValueError(f"--eval takes KIND:PATH with KIND in {', '.join(EVAL_KINDS)}, got {text!r}")
        return cls(kind, Path(path))


def train_run(
    config: TrainConfig,
    data: Path,
    *,
    evals: Sequence[EvalSpec] = (),
    align: bool = False,
    detector_factory: Callable[[], object] | None = None,
    aligned_cache: Path | None = None,
    min_images: int = 1,
    progress: Callable[[Iterable], Iterable] = lambda items: items,
) -> tuple[Trainer, TrainResult]:
    """Open ``data``, load the benchmarks (aligning LFW/CFP photos like the engine) and train.

    ``detector_factory`` builds the engine's FaceDetector, needed only when photos must be aligned
    (``align`` for identity folders; LFW and CFP benchmarks always).
    """
    aligner = None
    needs_detector = align or any(spec.kind != "bin" for spec in evals)
    if needs_detector:
        if detector_factory is None:
            raise ValueError("aligning photos needs the engine's face detector")
        aligner = engine_aligner(detector_factory(), config.input_size)
    cache_root = Path(config.out) / "aligned"
    source = open_training_data(
        data, min_images=min_images, aligned_cache=aligned_cache, aligner=aligner if align else None, progress=progress
    )
    logger.info("training data: %s, %d images, %d classes", source.kind, source.examples, source.classes)
    sets = []
    for spec in evals:
        sets.extend(
            load_verification_set(
                spec.kind,
                spec.path,
                config.input_size,
                aligner=aligner,
                cache=cache_root / spec.kind,
                progress=progress,
            )
        )
    trainer = Trainer(config, source, eval_sets=sets)
    return trainer, trainer.train()
