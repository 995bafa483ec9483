"""The JAX-on-CPU convolutions give Keras' own results, values and gradients (in a JAX process)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHECK = r"""
import numpy as np, jax, jax.numpy as jnp
from keras.src.backend.jax import nn as jnn
from facetrain import jax_cpu
original_dw, original_conv = jnn.depthwise_conv, jnn.conv
assert jax_cpu.install() and jnn.depthwise_conv is jax_cpu.depthwise_conv
rng = np.random.default_rng(0)
cases = [("dw", 15, 3, 1, "same"), ("dw", 16, 3, 2, "same"), ("dw", 15, 3, 2, "same"), ("dw", 7, 7, 1, "valid"),
         ("conv", 15, 1, 1, "same"), ("conv", 16, 1, 2, "valid"), ("conv", 15, 1, 2, "same")]
for kind, size, k, stride, padding in cases:
    x = jnp.asarray(rng.normal(size=(2, size, size, 6)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(k, k, 6, 1 if kind == "dw" else 5)), jnp.float32)
    ours, theirs = (jax_cpu.depthwise_conv, original_dw) if kind == "dw" else (jax_cpu.conv, original_conv)
    a, b = ours(x, w, stride, padding), theirs(x, w, stride, padding)
    assert a.shape == b.shape, (kind, size, a.shape, b.shape)
    np.testing.assert_allclose(a, b, atol=1e-4)
    ga = jax.grad(lambda x, w: jnp.sum(jnp.sin(ours(x, w, stride, padding))), argnums=(0, 1))(x, w)
    gb = jax.grad(lambda x, w: jnp.sum(jnp.sin(theirs(x, w, stride, padding))), argnums=(0, 1))(x, w)
    for u, v in zip(ga, gb):
        np.testing.assert_allclose(u, v, atol=1e-3)
# A 3x3 full convolution and a dilated one still go to Keras' own op.
x = jnp.ones((1, 8, 8, 4)); w3 = jnp.ones((3, 3, 4, 2))
np.testing.assert_allclose(jax_cpu.conv(x, w3, 1, "same"), original_conv(x, w3, 1, "same"))
print("ok")
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed (requirements-dev.txt)")
def test_cpu_convolutions_match_keras():
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-3000:]
