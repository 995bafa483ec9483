"""ONNX backend through onnxruntime: insightface model-zoo files a user brings."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelError
from .base import Embedder, InputConvention


class ONNXEmbedder(Embedder):
    def __init__(
        self, path: Path, *, name: str, dim: int, convention: InputConvention, num_threads: int | None = None
    ) -> None:
        import onnxruntime

        if not Path(path).is_file():
            raise ModelError(f"Model file {path} not found.")
        options = onnxruntime.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        providers = [
            p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in onnxruntime.get_available_providers()
        ]
        self._session = onnxruntime.InferenceSession(str(path), options, providers=providers)
        self.name, self.dim, self.convention = name, dim, convention
        model_input = self._session.get_inputs()[0]
        self._input_name = model_input.name
        first_dim = model_input.shape[0]
        self.fixed_batch = first_dim if isinstance(first_dim, int) and first_dim > 0 else None

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input_name: batch})[0]
