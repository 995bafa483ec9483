"""The input convention every training batch and exported backbone shares: RGB, NHWC, (x - 127.5) / 128.

Kept apart from the tf.data pipeline so the numpy loader, the verification code and the JAX
path read it without importing TensorFlow.
"""

from __future__ import annotations

MEAN, STD = 127.5, 128.0

__all__ = ["MEAN", "STD"]
