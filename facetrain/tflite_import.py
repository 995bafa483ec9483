"""The default MobileFaceNet.tflite's weights, read from the file's tensors into our Keras network.

The constants are read straight from the flatbuffer (the TFLite schema TensorFlow ships), not
through an interpreter, whose delegates may repack weights. The file's ops are walked in execution
order and paired with the Keras model's layers in the same order; every pair is shape-checked, so
a model that does not match the file fails loudly instead of importing garbage.

Layout conversions:
- CONV_2D weights are OHWI; Keras Conv2D wants HWIO.
- DEPTHWISE_CONV_2D weights are 1HW(C*M); Keras DepthwiseConv2D wants HWCM.
- Each conv's bias is its batch norm folded in. Our convs are bias-free and followed by a
  BatchNormalization (so the network trains normally), which the import sets to the identity
  plus that bias: gamma=1, beta=bias, moving_mean=0, moving_variance=1-eps. At inference this is
  exactly conv + bias. (A bias-carrying conv with no BN would also be exact, but could not be
  trained from scratch as well; this keeps one network for both.)
- PReLU is spelt ``relu(x) + c * (x - |x|)`` in the file; since x - |x| = 2 min(x, 0), Keras
  PReLU's alpha is 2c.
- The file has no FULLY_CONNECTED op: its head is a 7x7 global depthwise conv and two 1x1 convs,
  rebuilt as such (a final RESHAPE to [batch, 192] becomes a Flatten).

Fine-tuning note: in training mode a BatchNormalization uses batch statistics, not these identity
moving statistics, so the first steps of fine-tuning change the function; freeze the BN layers
(``layer.trainable = False`` runs them in inference mode in Keras 3) to fine-tune the weights only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceengine.errors import ModelError

CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")


@dataclass(frozen=True)
class ConvWeights:
    op: str  # "CONV_2D" or "DEPTHWISE_CONV_2D"
    kernel: np.ndarray  # in the file's layout (OHWI / 1HW(C*M))
    bias: np.ndarray
    stride: int
    padding: str  # "same" or "valid"


@dataclass(frozen=True)
class TFLiteWeights:
    convs: list[ConvWeights]
    prelu_alphas: list[np.ndarray]  # per channel, already doubled (Keras PReLU alpha)
    residual_adds: int  # ADDs of two block outputs (the PReLU's own ADD is not counted)
    input_shape: tuple[int, ...]
    embedding_size: int


def read_tflite_weights(tflite_path: Path) -> TFLiteWeights:
    """The conv kernels, biases and PReLU slopes of a MobileFaceNet-style TFLite file, in op order."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tensorflow.lite.python import schema_py_generated as schema

    path = Path(tflite_path)
    if not path.is_file():
        raise ModelError(f"Model file {path} not found: run `manage.py fetch_models`.")
    data = path.read_bytes()
    # A TFLite flatbuffer carries the file identifier "TFL3" right after the root offset.
    if data[4:8] != b"TFL3":
        raise ModelError(f"{path} is not a TFLite file.")
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
        graph = model.subgraphs[0]
    except Exception as exc:  # the flatbuffer reader raises anything on garbage
        raise ModelError(f"{path} is not a readable TFLite file: {exc}") from exc
    op_names = {value: key for key, value in vars(schema.BuiltinOperator).items() if not key.startswith("_")}
    producer: dict[int, str] = {}

    def op_name(op) -> str:
        code = model.operatorCodes[op.opcodeIndex]
        return op_names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")

    def constant(index: int) -> np.ndarray | None:
        if index < 0:
            return None
        tensor = graph.tensors[index]
        raw = model.buffers[tensor.buffer].data
        if raw is None:
            return None
        if tensor.type != schema.TensorType.FLOAT32:
            raise ModelError(f"Tensor {tensor.name!r} is not float32 (quantised files are not supported).")
        shape = [int(dim) for dim in tensor.shape]
        return np.frombuffer(bytes(raw), dtype="<f4").reshape(shape).copy()

    convs: list[ConvWeights] = []
    alphas: list[np.ndarray] = []
    residual_adds = 0
    for op in graph.operators:
        name = op_name(op)
        if name in CONV_OPS:
            kernel, bias = constant(op.inputs[1]), constant(op.inputs[2])
            if kernel is None or bias is None:
                raise ModelError(f"A {name} in {path} has non-constant weights or no bias.")
            options = op.builtinOptions
            if options.fusedActivationFunction != 0 or options.dilationHFactor != 1:
                raise ModelError(
                    f"A {name} in {path} has a fused activation or dilation; the Keras MobileFaceNet has neither."
                )
            convs.append(
                ConvWeights(
                    op=name,
                    kernel=kernel,
                    bias=bias,
                    stride=int(options.strideH),
                    padding="same" if options.padding == schema.Padding.SAME else "valid",
                )
            )
        elif name == "MUL":
            # PReLU: MUL(c, SUB(x, ABS(x))). Other MULs would be unexpected in this graph.
            values = [constant(index) for index in op.inputs]
            consts = [value for value in values if value is not None]
            others = [index for index, value in zip(op.inputs, values, strict=True) if value is None]
            if len(consts) != 1 or len(others) != 1 or producer.get(others[0]) != "SUB":
                raise ModelError(f"{path} has a MUL that is not a PReLU; not a MobileFaceNet file.")
            alphas.append(2.0 * consts[0].reshape(-1))
        elif name == "ADD" and not {producer.get(index) for index in op.inputs} & {"RELU", "MUL"}:
            residual_adds += 1
        for index in op.outputs:
            producer[index] = name
    inputs = graph.tensors[graph.inputs[0]]
    outputs = graph.tensors[graph.outputs[0]]
    return TFLiteWeights(
        convs=convs,
        prelu_alphas=alphas,
        residual_adds=residual_adds,
        input_shape=tuple(int(dim) for dim in inputs.shape),
        embedding_size=int(outputs.shape[-1]),
    )


def _keras_kernel(conv: ConvWeights, layer) -> np.ndarray:
    if conv.op == "CONV_2D":
        return conv.kernel.transpose(1, 2, 3, 0)  # OHWI -> HWIO
    _, height, width, channels = conv.kernel.shape
    multiplier = int(layer.depth_multiplier)
    return conv.kernel.reshape(height, width, channels // multiplier, multiplier)  # 1HW(C*M) -> HWCM


def load_default_weights(model, tflite_path: Path) -> None:
    """Set ``model`` (``mobilefacenet(embedding_size=192)``) to the TFLite file's weights, in place."""
    _assign(model, read_tflite_weights(tflite_path), str(tflite_path))


def _assign(model, weights: TFLiteWeights, source: str) -> None:
    import keras

    conv_layers = [
        layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))
    ]
    prelu_layers = [layer for layer in model.layers if isinstance(layer, keras.layers.PReLU)]
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    if (len(conv_layers), len(prelu_layers), len(adds)) != (
        len(weights.convs),
        len(weights.prelu_alphas),
        weights.residual_adds,
    ):
        raise ModelError(
            f"{model.name} has {len(conv_layers)} convs, {len(prelu_layers)} PReLUs and {len(adds)} "
            f"shortcuts; {source} has {len(weights.convs)}, {len(weights.prelu_alphas)} and "
            f"{weights.residual_adds}: not the same network."
        )
    layer_by_name = {layer.name: layer for layer in model.layers}
    for conv, layer in zip(weights.convs, conv_layers, strict=True):
        expected_op = "DEPTHWISE_CONV_2D" if isinstance(layer, keras.layers.DepthwiseConv2D) else "CONV_2D"
        kernel = _keras_kernel(conv, layer)
        target = layer.kernel  # Keras 3 keeps the depthwise kernel (HWCM) under this name too
        if (
            conv.op != expected_op
            or tuple(target.shape) != kernel.shape
            or layer.strides[0] != conv.stride
            or layer.padding != conv.padding
        ):
            raise ModelError(
                f"Layer {layer.name} ({expected_op} {tuple(target.shape)}, stride {layer.strides[0]}, "
                f"{layer.padding}) does not match the file's {conv.op} {kernel.shape}, stride "
                f"{conv.stride}, {conv.padding}."
            )
        target.assign(kernel)
        norm = layer_by_name.get(f"{layer.name}_bn")
        if not isinstance(norm, keras.layers.BatchNormalization) or norm.beta.shape != conv.bias.shape:
            raise ModelError(f"Layer {layer.name} has no matching batch norm for its bias.")
        norm.gamma.assign(np.ones_like(conv.bias))
        norm.beta.assign(conv.bias)
        norm.moving_mean.assign(np.zeros_like(conv.bias))
        # (x - 0) / sqrt(var + eps) must be x: var = 1 - eps.
        norm.moving_variance.assign(np.full_like(conv.bias, 1.0 - norm.epsilon))
    for alpha, layer in zip(weights.prelu_alphas, prelu_layers, strict=True):
        if int(np.prod(layer.alpha.shape)) != alpha.size:
            raise ModelError(f"PReLU {layer.name} has {tuple(layer.alpha.shape)} slopes; the file has {alpha.size}.")
        layer.alpha.assign(alpha.reshape(tuple(layer.alpha.shape)))


def import_default_model(tflite_path: Path):
    """The default MobileFaceNet.tflite as a Keras model (any batch size, GPU capable, trainable)."""
    from .backbones.mobilefacenet import mobilefacenet

    weights = read_tflite_weights(tflite_path)
    size = weights.input_shape[1]
    model = mobilefacenet(embedding_size=weights.embedding_size, input_size=size)
    _assign(model, weights, str(tflite_path))
    return model
