"""The margin head's logits against a hand computation, element by element, in float64 numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from facetrain.heads import ArcMarginHead, MarginConfig, cosine_logits, margin_logits  # noqa: E402


def hand_logits(x: np.ndarray, w: np.ndarray, labels: np.ndarray, c: MarginConfig) -> np.ndarray:
    """Scalar loops, no vectorised shortcut: what the formula in the ArcFace papers says."""
    n, k = x.shape[0], w.shape[1]
    out = np.zeros((n, k))
    for i in range(n):
        xi = x[i] / math.sqrt(sum(v * v for v in x[i]))
        for j in range(k):
            wj = w[:, j] / math.sqrt(sum(v * v for v in w[:, j]))
            cos = max(-1.0, min(1.0, float(sum(a * b for a, b in zip(xi, wj, strict=True)))))
            if j == labels[i]:
                theta = math.acos(cos)
                angle = c.m1 * theta + c.m2
                margin = math.cos(angle) - c.m3
                if c.easy_margin:
                    cos = margin if cos > 0 else cos
                elif angle <= math.pi:
                    cos = margin
                else:  # past pi: keep decreasing in theta, linearly (insightface's cos - mm)
                    cos = cos - c.m3 - c.m2 * math.sin(c.m2)
            out[i, j] = c.s * cos
    return out


def head_logits(x, w, labels, config, dtype=np.float32):
    cosine = cosine_logits(tf.constant(x.astype(dtype)), tf.constant(w.astype(dtype)))
    return margin_logits(cosine, tf.constant(labels), config).numpy()


@pytest.fixture
def problem():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(6, 16))
    w = rng.normal(size=(16, 5))
    labels = np.array([0, 1, 2, 3, 4, 2])
    return x, w, labels


@pytest.mark.parametrize(
    "config",
    [
        MarginConfig(s=64, m1=1.0, m2=0.5, m3=0.0),  # ArcFace
        MarginConfig(s=30, m1=1.0, m2=0.0, m3=0.35),  # CosFace
        MarginConfig(s=64, m1=1.35, m2=0.0, m3=0.0),  # SphereFace-like
        MarginConfig(s=64, m1=1.0, m2=0.3, m3=0.2),  # combined
        MarginConfig(s=32, m1=0.9, m2=0.4, m3=0.15),  # combined
        MarginConfig(s=64, m1=1.0, m2=0.5, m3=0.0, easy_margin=True),
    ],
)
def test_logits_match_hand_computation(problem, config):
    x, w, labels = problem
    expected = hand_logits(x, w, labels, config)
    got = head_logits(x, w, labels, config)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3 * config.s / 64)
    # The margin never helps the true class (easy margin leaves obtuse angles alone).
    plain = config.s * (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (w / np.linalg.norm(w, axis=0))
    rows = np.arange(len(labels))
    assert np.all(got[rows, labels] <= plain[rows, labels] + 1e-4)
    assert np.any(got[rows, labels] < plain[rows, labels] - 1e-2)


def test_theta_plus_margin_past_pi_uses_the_linear_fallback():
    """Embeddings almost opposite their class centre: theta ~ 2.9 > pi - 0.5."""
    w = np.eye(3)
    x = np.array([[-1.0, 0.2, 0.0], [-1.0, -0.1, 0.05]])
    labels = np.array([0, 0])
    config = MarginConfig()
    cos = x[:, 0] / np.linalg.norm(x, axis=1)
    assert np.all(np.arccos(cos) + config.m2 > math.pi)
    got = head_logits(x, w, labels, config)
    fallback = config.s * (cos - 0.5 * math.sin(0.5))
    np.testing.assert_allclose(got[:, 0], fallback, rtol=1e-5)
    np.testing.assert_allclose(got, hand_logits(x, w, labels, config), rtol=1e-5, atol=1e-4)
    # The plain formula would have *raised* the logit (cos turns back up past pi).
    assert np.all(np.cos(np.arccos(cos) + 0.5) > cos - 0.5 * math.sin(0.5))


def test_target_logit_is_monotonic_in_theta():
    config = MarginConfig()
    thetas = np.linspace(0.01, math.pi - 0.01, 200)
    x = np.stack([np.cos(thetas), np.sin(thetas)], axis=1)
    logits = head_logits(x, np.array([[1.0], [0.0]]), np.zeros(len(thetas), np.int64), config)[:, 0]
    assert np.all(np.diff(logits) < 0)


def test_easy_margin_leaves_obtuse_angles_alone():
    config = MarginConfig(easy_margin=True)
    x = np.array([[-0.5, 1.0]])  # cos < 0 with the centre (1, 0)
    got = head_logits(x, np.array([[1.0], [0.0]]), np.array([0]), config)
    assert got[0, 0] == pytest.approx(64 * (-0.5 / math.sqrt(1.25)), rel=1e-5)


def test_float16_inputs_give_float32_logits_close_to_float64(problem):
    x, w, labels = problem
    config = MarginConfig()
    got = head_logits(x, w, labels, config, dtype=np.float16)
    assert got.dtype == np.float32 and np.all(np.isfinite(got))
    # float16 inputs carry ~1e-3 relative error; scaled by s = 64 that is well under 0.2.
    np.testing.assert_allclose(got, hand_logits(x, w, labels, config), atol=0.2)


def test_float16_cosine_of_one_does_not_give_nan_gradients():
    """cos(theta) == 1 exactly: acos' derivative is infinite there unless clipped."""
    x = tf.Variable(np.array([[1.0, 0.0]], np.float16))
    w = tf.constant(np.array([[1.0, 0.0], [0.0, 1.0]], np.float16))
    with tf.GradientTape() as tape:
        logits = margin_logits(cosine_logits(x, w), tf.constant([0]), MarginConfig())
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=[0], logits=logits))
    gradient = tape.gradient(loss, x)
    assert np.all(np.isfinite(gradient.numpy()))


def test_layer_under_mixed_precision_keeps_float32_centres_and_logits():
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        head = ArcMarginHead(10, MarginConfig(s=32, m2=0.4))
        embeddings = tf.cast(tf.random.stateless_normal((4, 8), seed=(1, 2)), tf.float16)
        logits = head([embeddings, tf.constant([1, 2, 3, 4])])
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert head.centres.dtype == tf.float32
    assert logits.dtype == tf.float32 and logits.shape == (4, 10)
    # Bounded by s above and, through the past-pi fallback, by -s * (1 + m2 sin m2) below.
    assert np.all(logits.numpy() <= 32 + 1e-4)
    assert np.all(logits.numpy() >= -32 * (1 + 0.4 * math.sin(0.4)) - 1e-4)
    restored = ArcMarginHead.from_config(head.get_config())
    assert restored.config == head.config and restored.classes == 10


def test_config_rejects_nonsense():
    with pytest.raises(ValueError):
        MarginConfig(s=0)
    with pytest.raises(ValueError):
        MarginConfig(m2=-0.1)
