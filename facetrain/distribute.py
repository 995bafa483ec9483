"""Data parallelism over every visible device, for whichever Keras backend this process runs.

Keras picks its backend once, at import, from ``KERAS_BACKEND``; this module asks Keras which
one it got and sets up the matching distribution:

* TensorFlow: ``tf.distribute.MirroredStrategy`` over the visible GPUs (the CPU when there is
  none), ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names several machines. Models must
  be built and compiled inside ``scope()``; ``fit`` then splits each global batch.
* JAX: ``keras.distribution.DataParallel`` over ``keras.distribution.list_devices()``: variables
  replicated, each global batch sharded along its first axis.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import keras

__all__ = ["Distribution", "accelerator_present", "backend_name", "setup_distribution"]


def backend_name() -> str:
    return keras.backend.backend()


def accelerator_present() -> bool:
    """Whether the backend sees a GPU (or TPU), not only the CPU."""
    if backend_name() == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if backend_name() == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    return False


@dataclass
class Distribution:
    backend: str
    devices: list[str]
    strategy: object = None  # the tf.distribute strategy on TensorFlow
    _scope: object = field(default=None, repr=False)

    @property
    def replicas(self) -> int:
        return len(self.devices)

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Where models, optimizers and their variables are created."""
        if self.strategy is not None:
            with self.strategy.scope():  # type: ignore[attr-defined]
                yield
        else:
            yield


def setup_distribution() -> Distribution:
    """Data parallelism over every visible device of this process's backend."""
    backend = backend_name()
    if backend == "tensorflow":
        from .trainer import choose_strategy

        strategy = choose_strategy()
        devices = [str(d) for d in strategy.extended.worker_devices]
        return Distribution(backend, devices, strategy)
    if backend == "jax":
        devices = keras.distribution.list_devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        return Distribution(backend, list(devices))
    raise ValueError(f"training runs on the tensorflow or jax backend, not {backend!r}")
