"""TFLite backend: the default model (MobileFaceNet, 192-d, fixed batch of 2) runs here."""
from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .base import Embedder, InputConvention


def make_interpreter(model: Path | bytes, num_threads: int | None = None):
    """A TFLite interpreter with XNNPACK; TensorFlow is imported here, not at module import.

    tf.lite.Interpreter warns that it is deprecated in favour of ai-edge-litert; it still works
    in TF 2.21 and saves a second runtime dependency, so the warning is silenced here only.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    threads = num_threads or min(2, os.cpu_count() or 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(model, bytes):
            return tf.lite.Interpreter(model_content=model, num_threads=threads)
        return tf.lite.Interpreter(model_path=str(model), num_threads=threads)


class TFLiteEmbedder(Embedder):
    def __init__(self, path: Path, *, name: str, dim: int, convention: InputConvention,
                 num_threads: int | None = None) -> None:
        if not Path(path).is_file():
            raise ModelError(f"Model file {path} not found: run `manage.py fetch_models`.")
        self.name, self.dim, self.convention = name, dim, convention
        self._interpreter = make_interpreter(Path(path), num_threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        batch = int(self._input["shape"][0])
        self.fixed_batch = batch if int(self._input["shape_signature"][0]) != -1 else None
        out_dim = int(self._output["shape"][-1])
        if out_dim != dim:
            raise ModelError(f"{path} produces {out_dim}-d vectors but its metadata says {dim}.")
        # One interpreter is not thread-safe; a worker process may serve several threads.
        self._lock = threading.Lock()

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            if self.fixed_batch is None and tuple(self._input["shape"]) != batch.shape:
                self._interpreter.resize_tensor_input(self._input["index"], batch.shape)
                self._interpreter.allocate_tensors()
                self._input = self._interpreter.get_input_details()[0]
            self._interpreter.set_tensor(self._input["index"], batch)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output["index"]).copy()
