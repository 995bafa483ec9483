"""Rewrite a weight-quantised ONNX file as plain float32, once, at fetch time.

SFace ships block-quantised: every weight is an int8 initializer behind a ``DequantizeLinear``
with a ``block_size``. onnxruntime 1.32 refuses that attribute and OpenCV trips over the weight
names the file still lists as graph inputs. Folding each dequantisation into a float32
initializer gives the same network in a form both can run; the arithmetic is the operator's own
(``(x - zero_point) * scale`` per block), so the outputs are those the file means.

The rewrite is deterministic (same bytes in, same bytes out), so the result can be pinned by
sha256 like any downloaded file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError


def dequantize(
    x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int, block_size: int
) -> np.ndarray:
    """ONNX ``DequantizeLinear``: per-tensor (scalar scale), per-axis (1-D scale along ``axis``)
    or blocked (``scale`` shaped like ``x`` with ``ceil(x.shape[axis] / block_size)`` along
    ``axis``; element ``i`` uses block ``i // block_size``, the last block may be short)."""
    values = x.astype(np.float32)
    scale = scale.astype(np.float32)
    zero = np.zeros_like(scale) if zero_point is None else zero_point.astype(np.float32)
    if zero.shape != scale.shape:
        raise ModelError(f"DequantizeLinear zero point shape {zero.shape} differs from scale shape {scale.shape}.")
    if scale.ndim == 0 or (scale.size == 1 and block_size == 0):
        return ((values - zero.reshape(())) * scale.reshape(())).astype(np.float32)
    axis = axis % values.ndim
    if block_size == 0:
        if scale.ndim != 1 or scale.shape[0] != values.shape[axis]:
            raise ModelError(f"Per-axis scale of shape {scale.shape} does not fit axis {axis} of {values.shape}.")
        shape = [1] * values.ndim
        shape[axis] = -1
        return ((values - zero.reshape(shape)) * scale.reshape(shape)).astype(np.float32)
    blocks = -(-values.shape[axis] // block_size)
    expected = (*values.shape[:axis], blocks, *values.shape[axis + 1 :])
    if scale.shape != expected:
        raise ModelError(f"Blocked scale of shape {scale.shape} does not fit {values.shape} (expected {expected}).")
    # Repeat each block's scale and zero point over its elements, then cut the last block short.
    full_scale = np.repeat(scale, block_size, axis=axis).take(range(values.shape[axis]), axis=axis)
    full_zero = np.repeat(zero, block_size, axis=axis).take(range(values.shape[axis]), axis=axis)
    return ((values - full_zero) * full_scale).astype(np.float32)


def _attributes(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {attribute.name: helper.get_attribute_value(attribute) for attribute in node.attribute}


def rewrite_float32(source: Path, target: Path, *, dynamic_batch: bool = True) -> None:
    """Write ``source`` to ``target`` with every constant ``DequantizeLinear`` folded into a
    float32 initializer, the initializers nothing uses any more removed, and only the graph
    inputs a node really reads kept. With ``dynamic_batch`` the first dimension of the data
    input and of the outputs becomes symbolic, so one session runs any batch size."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:
        raise ModelError("Rewriting the model needs the onnx package (requirements.txt): pip install onnx.") from exc

    try:
        model = onnx.load(str(source))
    except Exception as exc:  # onnx raises DecodeError and others for a file that is no model
        raise ModelError(f"{source} is not a readable ONNX model: {exc}") from exc
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}

    kept_nodes = []
    folded: dict[str, np.ndarray] = {}
    for node in graph.node:
        constant = node.op_type == "DequantizeLinear" and all(name in initializers for name in node.input if name)
        if not constant:
            kept_nodes.append(node)
            continue
        attributes = _attributes(node)
        arrays = [numpy_helper.to_array(initializers[name]) if name else None for name in node.input]
        x, scale = arrays[0], arrays[1]
        zero_point = arrays[2] if len(arrays) > 2 else None
        assert x is not None and scale is not None
        folded[node.output[0]] = dequantize(
            x, scale, zero_point, int(attributes.get("axis", 1)), int(attributes.get("block_size", 0))
        )

    used = {name for node in kept_nodes for name in node.input if name} | {output.name for output in graph.output}
    produced = {name for node in kept_nodes for name in node.output}
    new_initializers = [tensor for tensor in graph.initializer if tensor.name in used and tensor.name not in folded]
    # Folded weights take the place of the initializers they came from, in node order.
    new_initializers += [numpy_helper.from_array(array, name) for name, array in folded.items() if name in used]
    init_names = {tensor.name for tensor in new_initializers}
    new_inputs = [
        value
        for value in graph.input
        if value.name in used and value.name not in init_names and value.name not in produced
    ]
    if not new_inputs:
        raise ModelError(f"{source} has no data input left after the rewrite.")

    del graph.node[:]
    graph.node.extend(kept_nodes)
    del graph.initializer[:]
    graph.initializer.extend(new_initializers)
    del graph.input[:]
    graph.input.extend(new_inputs)
    if dynamic_batch:
        # Protobuf copies on extend: change the messages the graph holds now.
        for value in [graph.input[0], *graph.output]:
            dims = value.type.tensor_type.shape.dim
            if dims:
                dims[0].ClearField("dim_value")
                dims[0].dim_param = "batch"
    # Shape annotations of the removed tensors would be stale; onnxruntime infers its own.
    del graph.value_info[:]
    onnx.checker.check_model(model)
    Path(target).write_bytes(model.SerializeToString(deterministic=True))
