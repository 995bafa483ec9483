"""A tiny end-to-end training run: finite loss, the run folder's files, resume from the checkpoint."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from facetrain.data.pipeline import open_training_data  # noqa: E402
from facetrain.data.recordio import write_recordio  # noqa: E402
from facetrain.heads import MarginConfig  # noqa: E402
from facetrain.trainer import TrainConfig, Trainer  # noqa: E402
from facetrain.verification import VerificationSet  # noqa: E402

SIZE = 32


def class_image(label: int, rng) -> np.ndarray:
    """Synthetic 'faces': each class its own colour blob, with noise."""
    image = rng.integers(0, 60, (SIZE, SIZE, 3)).astype(np.uint8)
    y, x = 6 + 8 * (label % 3), 6 + 8 * (label // 3)
    image[y : y + 10, x : x + 10, label % 3] = 250
    return image


def encode(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


@pytest.fixture
def pack(tmp_path):
    rng = np.random.default_rng(0)
    samples = [(encode(class_image(label, rng)), label) for label in range(4) for _ in range(8)]
    write_recordio(tmp_path / "data" / "train.rec", samples) if (tmp_path / "data").mkdir() is None else None
    return tmp_path / "data"


def verification_set(rng) -> VerificationSet:
    faces = np.stack([class_image(label, rng) for label in range(4) for _ in range(5)])
    labels = np.repeat(np.arange(4), 5)
    pairs = np.array([(i, j) for i in range(20) for j in range(i + 1, 20)])
    same = labels[pairs[:, 0]] == labels[pairs[:, 1]]
    folds = np.arange(len(pairs)) % 10
    return VerificationSet("toy", faces, pairs, same, folds)


def config(out, **overrides) -> TrainConfig:
    values = {
        "out": out,
        "backbone": "iresnet18",
        "embedding_size": 16,
        "input_size": SIZE,
        "epochs": 1,
        "batch_size": 8,
        "lr": 0.01,
        "margin": MarginConfig(s=16, m2=0.2),
        "eval_every": 3,
        "log_every": 1,
        "schedule": "cosine",
    }
    values.update(overrides)
    return TrainConfig(**values)


@pytest.mark.slow
def test_train_checkpoint_and_resume(pack, tmp_path):
    out = tmp_path / "run"
    data = open_training_data(pack)
    vset = verification_set(np.random.default_rng(1))
    trainer = Trainer(config(out, max_steps=3), data, eval_sets=[vset])
    assert trainer.steps_per_epoch == 4 and trainer.total_steps == 3
    result = trainer.train()
    assert result.step == 3 and len(result.losses) == 3
    assert all(np.isfinite(loss) for _, loss in result.losses)

    # The run folder the export command reads.
    run = json.loads((out / "run.json").read_text())
    assert run["backbone"] == "iresnet18" and run["step"] == 3 and run["classes"] == 4
    assert run["convention"] == {"color": "RGB", "mean": 127.5, "std": 128.0, "layout": "NHWC", "size": SIZE}
    assert run["head"]["s"] == 16 and run["head"]["m2"] == 0.2
    records = [json.loads(line) for line in (out / "verification.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [3]
    toy = records[0]["benchmarks"]["toy"]
    assert 0.0 <= toy["accuracy"] <= 1.0 and {"std", "threshold"} <= set(toy)
    backbone = keras.models.load_model(out / "backbone.keras", compile=False)
    batch = np.zeros((2, SIZE, SIZE, 3), np.float32)
    np.testing.assert_allclose(
        backbone(batch, training=False), trainer.backbone(batch, training=False), rtol=1e-5, atol=1e-5
    )
    assert (out / "checkpoints" / "checkpoint").is_file()
    assert list((out / "logs").iterdir())
    saved_kernel = trainer.backbone.get_layer("embedding_fc").kernel.numpy()

    # A new trainer on the same folder picks up at step 3 with the same weights and goes on.
    resumed = Trainer(config(out, epochs=2, max_steps=5), open_training_data(pack), eval_sets=[vset])
    assert resumed.resumed_from == 3
    np.testing.assert_array_equal(resumed.backbone.get_layer("embedding_fc").kernel.numpy(), saved_kernel)
    assert int(resumed.optimizer.iterations.numpy()) == 3
    more = resumed.train()
    assert more.step == 5 and [s for s, _ in more.losses] == [4, 5]
    assert not np.array_equal(resumed.backbone.get_layer("embedding_fc").kernel.numpy(), saved_kernel)
    records = [json.loads(line) for line in (out / "verification.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [3, 5]
    assert json.loads((out / "run.json").read_text())["step"] == 5


@pytest.mark.slow
def test_training_learns_the_toy_classes(pack, tmp_path):
    """Enough steps on 4 easy classes: the loss falls and the margin head classifies them."""
    trainer = Trainer(
        config(tmp_path / "run", epochs=12, lr=0.05, eval_every=0, log_every=4, margin=MarginConfig(s=16, m2=0.1)),
        open_training_data(pack),
    )
    result = trainer.train()
    first, last = result.losses[0][1], result.losses[-1][1]
    assert last < 0.6 * first
    rng = np.random.default_rng(5)
    images = np.stack([class_image(label, rng) for label in range(4) for _ in range(4)]).astype(np.float32)
    embeddings = trainer.backbone((images - 127.5) / 128.0, training=False)
    predicted = np.argmax(trainer.head.cosines(embeddings).numpy(), axis=1)
    assert np.mean(predicted == np.repeat(np.arange(4), 4)) >= 0.75


@pytest.mark.slow
def test_mixed_precision_step_is_finite(pack, tmp_path):
    trainer = Trainer(
        config(tmp_path / "run", max_steps=2, mixed_precision=True, eval_every=0), open_training_data(pack)
    )
    try:
        assert trainer.policy in ("mixed_bfloat16", "mixed_float16")
        result = trainer.train()
        assert all(np.isfinite(loss) for _, loss in result.losses)
        saved = keras.models.load_model(tmp_path / "run" / "backbone.keras", compile=False)
        assert all(w.dtype == "float32" for w in saved.weights)
        assert saved.layers[1].dtype_policy.name == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.slow
def test_float16_loss_scaling_path(pack, tmp_path):
    """The GPU path (float16 + LossScaleOptimizer), forced here so CI without a GPU runs it too."""
    trainer = Trainer(
        config(tmp_path / "run", epochs=3, max_steps=10, precision="mixed_float16", eval_every=0),
        open_training_data(pack),
    )
    try:
        assert isinstance(trainer.optimizer, keras.mixed_precision.LossScaleOptimizer)
        assert trainer.backbone.get_layer("stem_conv").compute_dtype == "float16"
        result = trainer.train()
        assert all(np.isfinite(loss) for _, loss in result.losses)
        # Dynamic loss scaling: a step whose float16 gradients overflow is skipped and halves
        # the scale (it starts at 2^15; doubling needs 2000 good steps), the others are applied.
        # Whether any of the 10 overflows depends on the random start, so count, don't assume.
        applied = int(trainer.optimizer.iterations.numpy())
        skipped = math.log2(2**15 / float(trainer.optimizer.dynamic_scale.numpy()))
        assert skipped == int(skipped) >= 0
        assert applied >= 1 and applied + int(skipped) == 10
        saved = keras.models.load_model(tmp_path / "run" / "backbone.keras", compile=False)
        assert saved.get_layer("stem_conv").compute_dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
