"""Learning-rate schedules and the TF_CONFIG reading that picks the strategy and the chief."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("tensorflow")

from facetrain.schedule import WarmupSchedule
from facetrain.trainer import choose_strategy, is_chief


def values(schedule, steps):
    return [float(schedule(step)) for step in steps]


def test_warmup_then_poly_decay():
    schedule = WarmupSchedule(0.1, 110, warmup_steps=10, kind="poly")
    assert values(schedule, [0, 4, 9]) == pytest.approx([0.01, 0.05, 0.1])
    # After warm-up: 0.1 * (1 - (step - 10) / 100) ** 2
    assert values(schedule, [10, 60, 110, 500]) == pytest.approx([0.1, 0.025, 0.0, 0.0])


def test_cosine_and_step_and_constant():
    cosine = WarmupSchedule(1.0, 100, kind="cosine")
    assert values(cosine, [0, 50, 100]) == pytest.approx([1.0, 0.5, 0.0], abs=1e-6)
    assert float(cosine(25)) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    step = WarmupSchedule(0.1, 1000, kind="step", boundaries=(100, 300))
    assert values(step, [99, 100, 299, 300]) == pytest.approx([0.1, 0.01, 0.01, 0.001])
    assert values(WarmupSchedule(0.3, 10, kind="constant"), [0, 9, 50]) == pytest.approx([0.3] * 3)
    with pytest.raises(ValueError):
        WarmupSchedule(0.1, 10, kind="exp")


@pytest.mark.parametrize(
    "tf_config,chief",
    [
        (None, True),
        ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}, True),
        ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}, False),
        ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}, False),
        ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}, True),
    ],
)
def test_only_the_chief_writes(monkeypatch, tf_config, chief):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert is_chief() is chief


def test_single_machine_gets_mirrored_strategy(monkeypatch):
    import tensorflow as tf

    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 0}})
    )
    strategy = choose_strategy()
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    assert strategy.num_replicas_in_sync == max(len(tf.config.list_physical_devices("GPU")), 1)
