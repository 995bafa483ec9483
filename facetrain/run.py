"""One training run from plain arguments: open the data, prepare benchmarks, train.

What ``manage.py train_arcface`` calls; kept apart from the command so scripts and tests can
start a run without Django's argument parsing. ``trainer="tensorflow"`` is the tf.data trainer
(``trainer.py``); ``trainer="keras"`` the backend-neutral one (``keras_trainer.py``) on the
backend Keras was loaded with, which imports no TensorFlow on JAX: the TensorFlow modules are
imported only by the path that uses them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import TrainConfig, TrainResult
from .data.folder import align_identities, engine_aligner, scan_identities
from .data.loader import FolderSamples, SampleSource, open_samples
from .verification import load_verification_set

logger = logging.getLogger(__name__)

EVAL_KINDS = ("lfw", "bin", "cfp-fp", "cfp-ff")
TRAINERS = ("tensorflow", "keras")


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
    trainer: str = "tensorflow",
    workers: int | None = None,
) -> tuple[Any, TrainResult]:
    """Open ``data``, load the benchmarks (aligning LFW/CFP photos like the engine) and train;
    returns (the trainer, its result).

    ``detector_factory`` builds the engine's FaceDetector, needed only when photos must be aligned
    (``align`` for identity folders; LFW and CFP benchmarks always). ``workers``: the Keras
    trainer's decoding processes (None: its default).
    """
    if trainer not in TRAINERS:
        raise ValueError(f"trainer must be one of {', '.join(TRAINERS)}, got {trainer!r}")
    aligner = None
    needs_detector = align or any(spec.kind != "bin" for spec in evals)
    if needs_detector:
        if detector_factory is None:
            raise ValueError("aligning photos needs the engine's face detector")
        aligner = engine_aligner(detector_factory(), config.input_size)
    cache_root = Path(config.out) / "aligned"
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
    if trainer == "keras":
        from .keras_trainer import KerasTrainer

        samples = _numpy_samples(data, min_images, aligned_cache, aligner if align else None, progress)
        logger.info("training data: %d images, %d classes (numpy loader)", len(samples), samples.classes)
        keras_trainer = KerasTrainer(config, samples, eval_sets=sets, workers=workers)
        return keras_trainer, keras_trainer.train()

    from .data.pipeline import open_training_data
    from .trainer import Trainer

    source = open_training_data(
        data, min_images=min_images, aligned_cache=aligned_cache, aligner=aligner if align else None, progress=progress
    )
    logger.info("training data: %s, %d images, %d classes", source.kind, source.examples, source.classes)
    tf_trainer = Trainer(config, source, eval_sets=sets)
    return tf_trainer, tf_trainer.train()


def _numpy_samples(
    data: Path,
    min_images: int,
    aligned_cache: Path | None,
    aligner: Callable[[bytes], Any] | None,
    progress: Callable[[Iterable], Iterable],
) -> SampleSource:
    """The Keras trainer's data: a RecordIO pack or crop folders; photo folders aligned first
    into the same crop cache as the TensorFlow path uses."""
    data = Path(data)
    if aligner is None:
        return open_samples(data, min_images=min_images)
    folder = scan_identities(data, min_images=min_images)
    cache = aligned_cache or data.parent / f"{data.name}-aligned"
    return FolderSamples(align_identities(folder, data, cache, aligner, progress))
