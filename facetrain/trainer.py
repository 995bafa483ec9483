"""The ArcFace training loop: distribution, mixed precision, checkpoints, logs, verification.

A custom loop (not ``Model.fit``) because the margin head needs the labels as an input, the
exported artefact is the backbone alone, and resume must restore step, optimizer slots and
loss scale exactly. Layout of the run folder (``out``):

* ``checkpoints/``       tf.train.CheckpointManager: backbone, head, optimizer, step
* ``logs/``              TensorBoard: loss, accuracy, learning rate, images/s, verification
* ``backbone.keras``     the float32 embedding model, rewritten at each evaluation and the end
* ``run.json``           what export needs: backbone, sizes, head, classes, step, convention
* ``verification.jsonl`` one line per evaluation: step, epoch, accuracy/std/threshold per benchmark
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from .backbones import build_backbone
from .config import CONVENTION, TrainConfig, TrainResult
from .data.pipeline import TrainingData, batches
from .heads import ArcMarginHead
from .schedule import WarmupSchedule
from .verification import VerificationSet, evaluate_sets

logger = logging.getLogger(__name__)

__all__ = ["TrainConfig", "TrainResult", "Trainer", "choose_strategy", "is_chief"]


def _scalar_metadata():
    from tensorflow.core.framework import summary_pb2

    # What tensorboard's own tf.summary.scalar writes (plugin "scalars", scalar data class),
    # written through TensorFlow's core op so TensorBoard need not be installed to log.
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR,
    )


def log_scalar(name: str, value: float, step: int) -> None:
    """One TensorBoard scalar on the default writer."""
    tf.summary.write(name, tf.constant(float(value), tf.float32), step=step, metadata=_scalar_metadata())


def _tf_config() -> dict:
    return json.loads(os.environ.get("TF_CONFIG") or "{}")


def choose_strategy() -> tf.distribute.Strategy:
    """MultiWorkerMirrored when TF_CONFIG names several machines, else Mirrored over every
    visible GPU (the CPU when there is none): one code path from a laptop to a cluster."""
    cluster = _tf_config().get("cluster", {})
    machines = sum(len(cluster.get(role, [])) for role in ("chief", "worker"))
    if machines > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.MirroredStrategy()


def is_chief() -> bool:
    """Only the chief (or worker 0 without a chief) writes logs, models and records."""
    task = _tf_config().get("task", {})
    cluster = _tf_config().get("cluster", {})
    if not task:
        return True
    if "chief" in cluster:
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0


def _precision_policy(enabled: bool) -> str:
    # float16 needs loss scaling and only pays off on GPUs with tensor cores; on CPUs (and TPUs)
    # bfloat16 keeps float32's range, so no loss scaling, and oneDNN has bf16 kernels.
    if not enabled:
        return "float32"
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


class Trainer:
    """Train a backbone + ArcFace head on ``data``; evaluate ``eval_sets`` as it goes."""

    def __init__(
        self,
        config: TrainConfig,
        data: TrainingData,
        *,
        eval_sets: Sequence[VerificationSet] = (),
        strategy: tf.distribute.Strategy | None = None,
        class_names: Sequence[str] = (),
    ) -> None:
        self.config, self.data, self.eval_sets = config, data, list(eval_sets)
        self.class_names = list(class_names or data.names)
        self.out = Path(config.out)
        self.chief = is_chief()
        self.policy = config.precision or _precision_policy(config.mixed_precision)
        keras.mixed_precision.set_global_policy(self.policy)
        self.strategy = strategy or choose_strategy()
        replicas = self.strategy.num_replicas_in_sync
        if config.batch_size % replicas:
            raise ValueError(f"batch size {config.batch_size} does not split over {replicas} replicas")
        self.steps_per_epoch = max(data.examples // config.batch_size, 1)
        total = math.ceil(config.epochs * self.steps_per_epoch)
        self.total_steps = min(total, config.max_steps) if config.max_steps else total
        with self.strategy.scope():
            self.backbone = build_backbone(
                config.backbone,
                embedding_size=config.embedding_size,
                input_size=config.input_size,
                activation=config.activation,
                dropout=config.dropout,
            )
            if config.bn_momentum is not None:
                for layer in self.backbone.layers:
                    if isinstance(layer, keras.layers.BatchNormalization):
                        layer.momentum = config.bn_momentum
            self.head = ArcMarginHead(data.classes, config.margin, name="arcface")
            self.head.build([(None, config.embedding_size), (None,)])
            schedule = WarmupSchedule(
                config.lr,
                self.total_steps,
                kind=config.schedule,
                warmup_steps=int(config.warmup_epochs * self.steps_per_epoch),
                boundaries=config.lr_steps,
            )
            self.schedule = schedule
            optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=config.momentum)
            if self.policy == "mixed_float16":
                optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
            self.optimizer = optimizer
            self.variables = self.backbone.trainable_variables + self.head.trainable_variables
            self.optimizer.build(self.variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="train_step")
        self.checkpoint = tf.train.Checkpoint(
            backbone=self.backbone, head=self.head, optimizer=self.optimizer, step=self.step
        )
        # Every worker must save (the collective needs them all); only the chief keeps its copy.
        ckpt_dir = self.out / "checkpoints" if self.chief else Path(tempfile.mkdtemp(prefix="arcface-worker-"))
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(ckpt_dir), max_to_keep=config.keep_checkpoints)
        self.resumed_from = None
        if self.manager.latest_checkpoint:
            self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
            self.resumed_from = int(self.step.numpy())
            logger.info("resumed from %s at step %d", self.manager.latest_checkpoint, self.resumed_from)
        self.writer = (
            tf.summary.create_file_writer(str(self.out / "logs")) if self.chief else tf.summary.create_noop_writer()
        )
        self._train_step = self._make_train_step()

    # ------------------------------------------------------------------ the step

    @property
    def replicas(self) -> int:
        """Devices each global batch is split over."""
        return int(self.strategy.num_replicas_in_sync)

    def _make_train_step(self):
        global_batch = self.config.batch_size
        backbone, head, optimizer, variables = self.backbone, self.head, self.optimizer, self.variables
        scaled = isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer)

        def replica_step(images, labels):
            with tf.GradientTape() as tape:
                embeddings = backbone(images, training=True)
                logits = head([embeddings, labels], training=True)
                per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
                total = loss
                regular = backbone.losses + head.losses
                if regular:
                    total += tf.nn.scale_regularization_loss(tf.add_n(regular))
                to_differentiate = optimizer.scale_loss(total) if scaled else total
            gradients = tape.gradient(to_differentiate, variables)
            optimizer.apply_gradients(zip(gradients, variables, strict=True))
            correct = tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), labels), tf.float32)
            # The reported loss is the margin softmax alone: weight decay would hide its trend.
            return loss, tf.reduce_sum(correct) / global_batch

        @tf.function
        def train_step(iterator):
            images, labels = next(iterator)
            loss, accuracy = self.strategy.run(replica_step, args=(images, labels))
            reduce = tf.distribute.ReduceOp.SUM
            return self.strategy.reduce(reduce, loss, axis=None), self.strategy.reduce(reduce, accuracy, axis=None)

        return train_step

    # ------------------------------------------------------------------ the loop

    def dataset(self) -> tf.data.Dataset:
        return batches(
            self.data,
            batch_size=self.config.batch_size,
            input_size=self.config.input_size,
            flip=self.config.flip,
            seed=self.config.seed + int(self.step.numpy()),
        )

    def train(self, dataset: tf.data.Dataset | None = None) -> TrainResult:
        """Train up to ``total_steps``; ``dataset`` (global batches, repeated) replaces the
        configured data, e.g. synthetic tensors for a throughput benchmark."""
        config = self.config
        iterator = iter(self.strategy.experimental_distribute_dataset(dataset or self.dataset()))
        losses, evaluations = [], []
        window_loss, window_steps, window_start = 0.0, 0, time.perf_counter()
        start_step = int(self.step.numpy())
        step, step_seconds = start_step, 0.0
        while step < self.total_steps:
            tick = time.perf_counter()
            loss, accuracy = self._train_step(iterator)
            loss = float(loss)  # waits for the step: the timing below is the step's own
            step_seconds += time.perf_counter() - tick
            self.step.assign_add(1)
            step += 1
            if not math.isfinite(loss):
                raise FloatingPointError(f"loss became {loss} at step {step}")
            window_loss += loss
            window_steps += 1
            if step % config.log_every == 0 or step == self.total_steps:
                elapsed = time.perf_counter() - window_start
                speed = window_steps * config.batch_size / max(elapsed, 1e-9)
                mean_loss = window_loss / window_steps
                losses.append((step, mean_loss))
                lr = float(self.schedule(step - 1))
                logger.info(
                    "step %d/%d epoch %.2f loss %.4f acc %.3f lr %.5f %.1f img/s",
                    step,
                    self.total_steps,
                    step / self.steps_per_epoch,
                    mean_loss,
                    float(accuracy),
                    lr,
                    speed,
                )
                with self.writer.as_default(step=step):
                    log_scalar("train/loss", mean_loss, step)
                    log_scalar("train/accuracy", float(accuracy), step)
                    log_scalar("train/learning_rate", lr, step)
                    log_scalar("train/images_per_second", speed, step)
                window_loss, window_steps, window_start = 0.0, 0, time.perf_counter()
            if (config.eval_every and step % config.eval_every == 0) or step == self.total_steps:
                evaluations.append(self.checkpoint_and_evaluate())
        self.writer.flush()
        # Training steps only: evaluations and checkpoint writes are not counted.
        return TrainResult(
            step=step,
            epoch=step / self.steps_per_epoch,
            losses=losses,
            evaluations=evaluations,
            images_per_second=(step - start_step) * config.batch_size / max(step_seconds, 1e-9),
        )

    # ------------------------------------------------------------------ outputs

    def checkpoint_and_evaluate(self) -> dict:
        """Save a checkpoint, the float32 backbone and run.json; score the benchmarks."""
        step = int(self.step.numpy())
        self.manager.save(checkpoint_number=step)
        record: dict[str, Any] = {"step": step, "epoch": round(step / self.steps_per_epoch, 4), "benchmarks": {}}
        if not self.chief:
            return record
        backbone = self.float32_backbone()
        if self.eval_sets:
            record["benchmarks"] = evaluate_sets(backbone, self.eval_sets)
            with self.writer.as_default(step=step):
                for name, result in record["benchmarks"].items():
                    log_scalar(f"verification/{name}", result["accuracy"], step)
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
        self.out.mkdir(parents=True, exist_ok=True)
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
            copy = build_backbone(
                self.config.backbone,
                embedding_size=self.config.embedding_size,
                input_size=self.config.input_size,
                activation=self.config.activation,
                dropout=self.config.dropout,
            )
        finally:
            keras.mixed_precision.set_global_policy(previous)
        copy.set_weights([np.asarray(w) for w in self.backbone.get_weights()])
        if self.config.bn_momentum is not None:
            for layer in copy.layers:
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.momentum = self.config.bn_momentum
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
            "classes": self.data.classes,
            "examples": self.data.examples,
            "data_kind": self.data.kind,
            "step": step,
            "epoch": round(step / self.steps_per_epoch, 4),
            "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps,
            "precision": self.policy,
            "replicas": self.strategy.num_replicas_in_sync,
            "convention": {**CONVENTION, "size": config.input_size},
            "config": config.to_dict(),
        }
        if self.class_names:
            (self.out / "classes.json").write_text(json.dumps(self.class_names))
        tmp = self.out / "run.json.tmp"
        tmp.write_text(json.dumps(payload, indent=2))
        tmp.replace(self.out / "run.json")
