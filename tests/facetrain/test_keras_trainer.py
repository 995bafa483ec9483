"""The backend-neutral trainer: the Keras-only step trains on TensorFlow (here) and on JAX (in a
subprocess, TensorFlow made unimportable, two virtual CPU devices for DataParallel); resume;
loss scaling under float16; a JAX-trained export gives the same embeddings in the engine."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")
import keras

from facetrain.config import TrainConfig
from facetrain.data.loader import open_samples
from facetrain.margin import MarginConfig
from facetrain.step import choose_policy
from tests.facetrain.synthetic import make_identity_folder

ROOT = Path(__file__).resolve().parents[2]
needs_jax = pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="jax is not installed (pip install -r requirements-dev.txt)"
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return make_identity_folder(tmp_path_factory.mktemp("ids"), classes=4, per_class=8, size=32)


def tiny_config(out: Path, steps: int, **overrides) -> TrainConfig:
    settings = {
        "out": out,
        "backbone": "mobilefacenet",
        "embedding_size": 16,
        "input_size": 32,
        "margin": MarginConfig(s=16, m2=0.2),
        "epochs": 1000,
        "max_steps": steps,
        "batch_size": 8,
        "lr": 0.05,
        "eval_every": 0,
        "log_every": 10,
    }
    settings.update(overrides)
    return TrainConfig(**settings)


@pytest.fixture
def float32_policy():
    previous = keras.mixed_precision.global_policy()
    yield
    keras.mixed_precision.set_global_policy(previous)


def test_trains_on_tensorflow_and_resumes_from_its_keras_checkpoint(folder, tmp_path, float32_policy):
    from facetrain.keras_trainer import KerasTrainer

    assert keras.backend.backend() == "tensorflow"
    source = open_samples(folder)
    trainer = KerasTrainer(tiny_config(tmp_path / "run", 40), source, workers=0)
    assert trainer.distribution.strategy is not None  # MirroredStrategy, as the TF trainer
    result = trainer.train()
    losses = [loss for _, loss in result.losses]
    assert result.step == 40 and len(losses) == 4
    assert losses[-1] < 0.5 * losses[0], losses  # the margin softmax falls
    assert (tmp_path / "run" / "checkpoints" / "step-00000040.keras").is_file()
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["backend"] == "tensorflow" and run["step"] == 40 and run["classes"] == 4
    iterations = int(trainer.model.optimizer.iterations.numpy())

    again = KerasTrainer(tiny_config(tmp_path / "run", 50), source, workers=0)
    assert again.resumed_from == 40 and int(again.model.optimizer.iterations.numpy()) == iterations
    for ours, theirs in zip(again.model.get_weights(), trainer.model.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    resumed = again.train()
    assert resumed.step == 50 and resumed.losses[-1][1] < losses[0]


def test_float16_trains_with_loss_scaling(folder, tmp_path, float32_policy):
    from facetrain.keras_trainer import KerasTrainer

    trainer = KerasTrainer(
        tiny_config(tmp_path / "run", 4, precision="mixed_float16", log_every=2), open_samples(folder), workers=0
    )
    assert isinstance(trainer.model.optimizer, keras.optimizers.LossScaleOptimizer)
    result = trainer.train()
    assert all(np.isfinite(loss) for _, loss in result.losses)
    keras.mixed_precision.set_global_policy("float32")
    saved = keras.models.load_model(tmp_path / "run" / "backbone.keras", compile=False)
    # Exported in plain float32: every layer computes in float32, whatever trained it.
    assert {layer.dtype_policy.name for layer in saved.layers} == {"float32"}


def test_policy_choice():
    assert choose_policy(None, False, backend="jax", accelerator=True) == "float32"
    assert choose_policy(None, True, backend="jax", accelerator=True) == "mixed_bfloat16"
    assert choose_policy(None, True, backend="tensorflow", accelerator=True) == "mixed_float16"
    assert choose_policy(None, True, backend="tensorflow", accelerator=False) == "mixed_bfloat16"
    with pytest.raises(ValueError):
        choose_policy("float8", True, backend="jax", accelerator=False)


@pytest.fixture(scope="module")
def jax_run(folder, tmp_path_factory):
    """A tiny JAX training run + export, in its own process (Keras' backend is fixed per process)."""
    out = tmp_path_factory.mktemp("jax")
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_PLATFORMS": "cpu",
    }
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "facetrain" / "jax_run.py"),
            str(folder),
            str(out),
            str(out / "models"),
            "40",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return out, json.loads((out / "result.json").read_text())


@needs_jax
def test_trains_on_jax_over_two_devices_without_tensorflow(jax_run):
    _, result = jax_run
    assert not result["tensorflow_loaded"]
    assert len(result["devices"]) == 2  # keras.distribution.DataParallel over both
    losses = [loss for _, loss in result["losses"]]
    assert result["step"] == 40 and losses[-1] < 0.5 * losses[0], losses


@needs_jax
def test_a_jax_trained_export_gives_the_same_embeddings_in_the_engine(jax_run):
    from faceengine.embedders.registry import build_embedder, load_model_spec

    out, _ = jax_run
    spec = load_model_spec("tiny-jax", out / "models")
    assert spec.backend == "keras" and spec.dim == 16
    embedder = build_embedder(spec, out / "models")  # KerasEmbedder, TensorFlow backend
    faces, under_jax = np.load(out / "faces.npy"), np.load(out / "jax.npy")
    under_tf = embedder.embed(faces)
    cosine = np.sum(under_tf * under_jax, axis=1)
    assert cosine.min() > 0.999, cosine
    # The embeddings tell the classes apart too: not a constant vector.
    assert np.abs(under_tf @ under_tf.T).min() < 0.99
