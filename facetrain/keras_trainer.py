"""The backend-neutral ArcFace trainer: Keras 3 ``fit`` on TensorFlow or JAX, numpy batches.

The same run folder as the TensorFlow trainer (``trainer.py``), with ``.keras`` checkpoints:

* ``checkpoints/step-XXXXXXXX.keras``  the training model (backbone, head) with its optimizer
  state, the last ``keep_checkpoints`` of them; a rerun on the same folder resumes from the last
* ``backbone.keras``     the float32 embedding model, rewritten at each evaluation and the end
* ``run.json``           what export needs (backbone, sizes, head, classes, step, convention, backend)
* ``verification.jsonl`` one line per evaluation
* ``losses.jsonl``       one line per log window: step, margin-softmax loss, accuracy, lr, img/s

Which backend runs is Keras' choice at import (``KERAS_BACKEND``), so one process trains on one
backend; ``distribute.setup_distribution`` spreads each global batch over every visible device.
There are no TensorBoard files here: writing them needs TensorFlow, which the JAX machines lack.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from . import jax_cpu
from .config import CONVENTION, TrainConfig, TrainResult
from .data.loader import BatchLoader, SampleSource
from .distribute import Distribution, accelerator_present, backend_name, setup_distribution
from .step import build_backbone_for, build_training_model, choose_policy, compile_training_model
from .verification import VerificationSet, evaluate_sets

logger = logging.getLogger(__name__)

__all__ = ["KerasTrainer", "latest_checkpoint"]

_CHECKPOINT = re.compile(r"step-(\d+)\.keras$")


def latest_checkpoint(folder: Path) -> tuple[int, Path] | None:
    """(step, path) of the newest ``step-N.keras`` in ``folder``."""
    found = [(int(m.group(1)), p) for p in Path(folder).glob("step-*.keras") if (m := _CHECKPOINT.search(p.name))]
    return max(found) if found else None


class KerasTrainer:
    """Train a backbone + ArcFace head on ``source``; evaluate ``eval_sets`` as it goes.

    ``workers`` decoding processes feed the batches (0: decode in this process).
    """

    def __init__(
        self,
        config: TrainConfig,
        source: SampleSource,
        *,
        eval_sets: Sequence[VerificationSet] = (),
        class_names: Sequence[str] = (),
        workers: int | None = None,
        distribution: Distribution | None = None,
    ) -> None:
        self.config, self.source, self.eval_sets = config, source, list(eval_sets)
        self.class_names = list(class_names or source.names)
        self.out = Path(config.out)
        self.workers = workers
        self.backend = backend_name()
        # XLA's CPU convolutions are slow for MobileFaceNet's depthwise layers: see jax_cpu.
        self.cpu_convolutions = jax_cpu.install()
        self.policy = choose_policy(
            config.precision, config.mixed_precision, backend=self.backend, accelerator=accelerator_present()
        )
        keras.mixed_precision.set_global_policy(self.policy)
        self.distribution = distribution or setup_distribution()
        if config.batch_size % self.distribution.replicas:
            raise ValueError(f"batch size {config.batch_size} does not split over {self.distribution.replicas} devices")
        self.steps_per_epoch = max(len(source) // config.batch_size, 1)
        total = math.ceil(config.epochs * self.steps_per_epoch)
        self.total_steps = min(total, config.max_steps) if config.max_steps else total
        keras.utils.set_random_seed(config.seed)
        with self.distribution.scope():
            self.model, self.backbone = build_training_model(config, source.classes)
            self.schedule = compile_training_model(
                self.model,
                config,
                policy=self.policy,
                total_steps=self.total_steps,
                steps_per_epoch=self.steps_per_epoch,
            )
        self.step = 0
        self.resumed_from: int | None = None
        found = latest_checkpoint(self.out / "checkpoints")
        if found:
            self.step, path = found
            # The architecture is rebuilt from the config; the file brings the weights and the
            # optimizer's slots and iteration count.
            self.model.load_weights(path)
            self.resumed_from = self.step
            logger.info("resumed from %s at step %d", path, self.step)

    @property
    def replicas(self) -> int:
        """Devices each global batch is split over."""
        return int(self.distribution.replicas)

    # ------------------------------------------------------------------ the loop

    def loader(self) -> BatchLoader:
        return BatchLoader(
            self.source,
            batch_size=self.config.batch_size,
            input_size=self.config.input_size,
            flip=self.config.flip,
            seed=self.config.seed,
            workers=self.workers,
            start_batch=self.step,
        )

    def train(self, batches: Iterator[tuple[np.ndarray, np.ndarray]] | None = None) -> TrainResult:
        """Train up to ``total_steps``; ``batches`` (endless global batches) replaces the
        configured data, e.g. synthetic arrays for a throughput benchmark."""
        loader = None
        if batches is None:
            loader = self.loader()
            batches = iter(loader)
        start_step = self.step
        recorder = _Recorder(self, start_step)
        remaining = self.total_steps - start_step
        if remaining <= 0:
            return recorder.result()

        def stream():
            for images, labels in batches:
                yield (images, labels), labels

        try:
            self.model.fit(
                stream(),
                steps_per_epoch=self.steps_per_epoch,
                epochs=math.ceil(remaining / self.steps_per_epoch) + 1,
                callbacks=[recorder],
                shuffle=False,  # the loader shuffles
                verbose=0,
            )
        finally:
            if loader is not None:
                loader.close()
        if recorder.failure:
            raise FloatingPointError(recorder.failure)
        return recorder.result()

    # ------------------------------------------------------------------ outputs

    def checkpoint_and_evaluate(self) -> dict:
        """Save a checkpoint, the float32 backbone and run.json; score the benchmarks."""
        step = self.step
        folder = self.out / "checkpoints"
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"step-{step:08d}.tmp.keras"
        self.model.save(tmp)
        tmp.replace(folder / f"step-{step:08d}.keras")
        for _, old in sorted(
            (int(m.group(1)), p) for p in folder.glob("step-*.keras") if (m := _CHECKPOINT.search(p.name))
        )[: -self.config.keep_checkpoints]:
            old.unlink()
        record: dict[str, Any] = {"step": step, "epoch": round(step / self.steps_per_epoch, 4), "benchmarks": {}}
        backbone = self.float32_backbone()
        if self.eval_sets:
            record["benchmarks"] = evaluate_sets(backbone, self.eval_sets)
            with (self.out / "verification.jsonl").open("a") as handle:
                handle.write(json.dumps(record) + "\n")
            logger.info(
                "step %d verification: %s",
                step,
                ", ".join(
                    f"{n} {100 * r['accuracy']:.2f}% (thr {r['threshold']:.3f})"
                    for n, r in record["benchmarks"].items()
                ),
            )
        tmp = self.out / "backbone.tmp.keras"
        backbone.save(tmp)
        tmp.replace(self.out / "backbone.keras")
        self.write_run_json(step)
        return record

    def float32_backbone(self) -> keras.Model:
        """The backbone in plain float32, so the saved model runs anywhere (and fast on CPUs)."""
        if self.policy == "float32":
            return self.backbone
        previous = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy("float32")
        try:
            with self.distribution.scope():
                copy = build_backbone_for(self.config)
        finally:
            keras.mixed_precision.set_global_policy(previous)
        copy.set_weights([np.asarray(w) for w in self.backbone.get_weights()])
        return copy

    def write_run_json(self, step: int) -> None:
        config = self.config
        payload = {
            "backbone": config.backbone,
            "embedding_size": config.embedding_size,
            "input_size": config.input_size,
            "activation": config.activation,
            "dropout": config.dropout,
            "head": {"type": "arcface", **config.margin.to_dict()},
            "classes": self.source.classes,
            "examples": len(self.source),
            "data_kind": self.source.kind,
            "step": step,
            "epoch": round(step / self.steps_per_epoch, 4),
            "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps,
            "precision": self.policy,
            "backend": self.backend,
            "jax_cpu_convolutions": self.cpu_convolutions,
            "keras": keras.__version__,
            "replicas": self.distribution.replicas,
            "devices": self.distribution.devices,
            "convention": {**CONVENTION, "size": config.input_size},
            "config": config.to_dict(),
        }
        self.out.mkdir(parents=True, exist_ok=True)
        if self.class_names:
            (self.out / "classes.json").write_text(json.dumps(self.class_names))
        tmp = self.out / "run.json.tmp"
        tmp.write_text(json.dumps(payload, indent=2))
        tmp.replace(self.out / "run.json")


class _Recorder(keras.callbacks.Callback):
    """Counts steps, logs windows, evaluates and checkpoints, stops at ``total_steps``.

    Keras reports running means since the start of the epoch; a window's mean is recovered
    from the running sums at its two ends, so the values are read (and the device waited for)
    only at window ends, not after every step.
    """

    def __init__(self, trainer: KerasTrainer, start_step: int) -> None:
        super().__init__()
        self.trainer, self.start_step = trainer, start_step
        self.losses: list[tuple[int, float]] = []
        self.evaluations: list[dict] = []
        self.failure: str | None = None
        self.train_seconds = 0.0
        self._epoch_sums = {"softmax": 0.0, "accuracy": 0.0}
        self._epoch_steps = 0
        self._window = {"softmax": 0.0, "accuracy": 0.0}
        self._window_steps = 0
        self._window_start = time.perf_counter()

    def result(self) -> TrainResult:
        trainer = self.trainer
        trained = trainer.step - self.start_step
        return TrainResult(
            step=trainer.step,
            epoch=trainer.step / trainer.steps_per_epoch,
            losses=self.losses,
            evaluations=self.evaluations,
            images_per_second=trained * trainer.config.batch_size / max(self.train_seconds, 1e-9),
        )

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_sums = {"softmax": 0.0, "accuracy": 0.0}
        self._epoch_steps = 0

    def _take(self, logs: dict, steps_in_epoch: int) -> None:
        for key in self._window:
            running_sum = float(logs[key]) * steps_in_epoch
            self._window[key] += running_sum - self._epoch_sums[key]
            self._epoch_sums[key] = running_sum
        self._window_steps += steps_in_epoch - self._epoch_steps
        self._epoch_steps = steps_in_epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        trainer, config = self.trainer, self.trainer.config
        trainer.step += 1
        step = trainer.step
        log_now = step % config.log_every == 0 or step == trainer.total_steps
        eval_now = (config.eval_every and step % config.eval_every == 0) or step == trainer.total_steps
        if not (log_now or eval_now or batch + 1 == trainer.steps_per_epoch):
            return
        self._take(logs or {}, batch + 1)
        if log_now:
            self._log(step)
        if eval_now:
            paused = time.perf_counter()
            self.model  # noqa: B018 -- on JAX, reading .model puts the trained weights back into the model
            self.evaluations.append(trainer.checkpoint_and_evaluate())
            # Evaluation and checkpoint writes are not training time.
            self._window_start += time.perf_counter() - paused
        if step >= trainer.total_steps or self.failure:
            self.model.stop_training = True

    def _log(self, step: int) -> None:
        trainer = self.trainer
        elapsed = time.perf_counter() - self._window_start
        self.train_seconds += elapsed
        steps = max(self._window_steps, 1)
        loss, accuracy = self._window["softmax"] / steps, self._window["accuracy"] / steps
        speed = self._window_steps * trainer.config.batch_size / max(elapsed, 1e-9)
        lr = float(np.asarray(trainer.schedule(step - 1)))
        if not math.isfinite(loss):
            self.failure = f"loss became {loss} by step {step}"
        self.losses.append((step, loss))
        logger.info(
            "step %d/%d epoch %.2f loss %.4f acc %.3f lr %.5f %.1f img/s",
            step,
            trainer.total_steps,
            step / trainer.steps_per_epoch,
            loss,
            accuracy,
            lr,
            speed,
        )
        trainer.out.mkdir(parents=True, exist_ok=True)
        with (trainer.out / "losses.jsonl").open("a") as handle:
            line = {"step": step, "loss": loss, "accuracy": accuracy, "lr": lr, "images_per_second": speed}
            handle.write(json.dumps(line) + "\n")
        self._window = {"softmax": 0.0, "accuracy": 0.0}
        self._window_steps = 0
        self._window_start = time.perf_counter()
