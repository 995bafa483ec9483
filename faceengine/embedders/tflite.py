"""TFLite backend: the default model (MobileFaceNet, 192-d) runs here.

The default file is compiled for a fixed batch of 2, so one face would cost two. Its only
batch-bound op is the final RESHAPE to [2, 192]; ``free_batch`` rewrites that constant to
[-1, 192] in memory (the file on disk keeps its checksum), after which the interpreter takes
any batch size. Interpreters are kept per batch size, since resizing one re-plans XNNPACK.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .base import Embedder, InputConvention

MAX_BATCH = 8


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


def free_batch(model: bytes) -> bytes | None:
    """The model with batch-bound RESHAPE constants made -1, or None if it has none to fix."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    tree = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    graph = tree.subgraphs[0]
    batch = int(graph.tensors[graph.inputs[0]].shape[0])
    changed = False
    for op in graph.operators:
        code = tree.operatorCodes[op.opcodeIndex]
        if max(code.builtinCode, code.deprecatedBuiltinCode) != schema.BuiltinOperator.RESHAPE:
            continue
        if len(op.inputs) > 1 and op.inputs[1] >= 0:
            buffer = tree.buffers[graph.tensors[op.inputs[1]].buffer]
            if buffer.data is not None:
                shape = np.frombuffer(bytes(buffer.data), np.int32).copy()
                if len(shape) and shape[0] == batch:
                    shape[0] = -1
                    buffer.data = np.frombuffer(shape.tobytes(), np.uint8)
                    changed = True
        options = op.builtinOptions
        if options is not None and getattr(options, "newShape", None) is not None:
            new_shape = np.array(options.newShape, np.int32)
            if len(new_shape) and new_shape[0] == batch:
                new_shape[0] = -1
                options.newShape = new_shape
                changed = True
    if not changed:
        return None
    for index in graph.inputs:
        graph.tensors[index].shapeSignature = [-1, *graph.tensors[index].shape[1:]]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(tree))


class TFLiteEmbedder(Embedder):
    def __init__(
        self, path: Path, *, name: str, dim: int, convention: InputConvention, num_threads: int | None = None
    ) -> None:
        if not Path(path).is_file():
            raise ModelError(f"Model file {path} not found: run `manage.py fetch_models`.")
        self.name, self.dim, self.convention = name, dim, convention
        self._threads = num_threads
        self._model = Path(path).read_bytes()
        probe = make_interpreter(self._model, num_threads)
        details = probe.get_input_details()[0]
        out_dim = int(probe.get_output_details()[0]["shape"][-1])
        if out_dim != dim:
            raise ModelError(f"{path} produces {out_dim}-d vectors but its metadata says {dim}.")
        self.fixed_batch = None
        self.max_batch = MAX_BATCH
        if int(details["shape_signature"][0]) != -1:
            freed = free_batch(self._model)
            if freed is not None:
                self._model = freed
            else:
                self.fixed_batch = int(details["shape"][0])
        # Interpreters per batch size; one interpreter is not thread-safe.
        self._interpreters: dict[int, object] = {}
        self._lock = threading.Lock()

    def _interpreter(self, batch: int):
        interpreter = self._interpreters.get(batch)
        if interpreter is None:
            interpreter = make_interpreter(self._model, self._threads)
            index = interpreter.get_input_details()[0]["index"]
            if interpreter.get_input_details()[0]["shape"][0] != batch:
                interpreter.resize_tensor_input(index, [batch, *self._input_shape()], strict=False)
            interpreter.allocate_tensors()
            self._interpreters[batch] = interpreter
        return interpreter

    def _input_shape(self) -> list[int]:
        size = self.convention.size
        return [size, size, 3]

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            interpreter = self._interpreter(len(batch))
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], batch)
            interpreter.invoke()
            return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()
