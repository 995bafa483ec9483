"""Backbones: output shapes, parameter counts against insightface's architecture, save/load."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")
import keras

from facetrain.backbones import build_backbone


def trainable(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def iresnet_param_count(layers: tuple[int, ...], embedding: int = 512, size: int = 112) -> int:
    """Trainable parameters of insightface's IResNet, counted from its definition by hand.

    Convs are bias-free; BN has gamma + beta; PReLU one slope per channel. The final
    BatchNorm1d's weight is frozen at 1 in insightface (requires_grad=False): only its bias trains.
    """
    bn = lambda c: 2 * c  # noqa: E731
    total = 3 * 3 * 3 * 64 + bn(64) + 64  # stem conv, bn, prelu
    inplanes = 64
    for units, planes in zip(layers, (64, 128, 256, 512), strict=True):
        for unit in range(units):
            stride = 2 if unit == 0 else 1
            total += bn(inplanes) + 9 * inplanes * planes + bn(planes) + planes + 9 * planes * planes + bn(planes)
            if stride != 1 or inplanes != planes:
                total += inplanes * planes + bn(planes)
            inplanes = planes
    spatial = size // 16
    total += bn(512) + 512 * spatial * spatial * embedding + embedding + embedding
    return total


@pytest.mark.slow
@pytest.mark.parametrize("name,layers", [("iresnet50", (3, 4, 14, 3)), ("iresnet100", (3, 13, 30, 3))])
def test_iresnet_parameter_count_matches_insightface(name, layers):
    model = build_backbone(name)
    assert model.output_shape == (None, 512)
    expected = iresnet_param_count(layers)
    assert trainable(model) == expected
    if name == "iresnet50":
        # The figure quoted for insightface's r50 with a 512-d head at 112x112.
        assert 43.5e6 < expected < 43.7e6
    else:
        assert 65.1e6 < expected < 65.3e6


def test_iresnet50_forward_shape_and_stride():
    model = build_backbone("iresnet50", embedding_size=128, input_size=112)
    out = model(np.zeros((2, 112, 112, 3), np.float32), training=False)
    assert out.shape == (2, 128) and out.dtype == "float32"
    # Four stride-2 stages: 112 -> 7, so the FC sees 512 * 7 * 7 features.
    assert model.get_layer("embedding_fc").kernel.shape == (512 * 7 * 7, 128)


@pytest.mark.parametrize(
    "activation,layer_type", [("prelu", keras.layers.PReLU), ("leaky_relu", keras.layers.LeakyReLU)]
)
def test_resnet_v2_m_50_activation_switch(activation, layer_type):
    model = build_backbone("resnet_v2_m_50", activation=activation, embedding_size=64, input_size=112)
    kinds = {type(layer) for layer in model.layers}
    assert layer_type in kinds
    other = keras.layers.LeakyReLU if layer_type is keras.layers.PReLU else keras.layers.PReLU
    assert other not in kinds
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    # 50 weight layers = stem + 24 units x 2 convs + FC; plus 4 projection shortcuts.
    assert len(convs) == 1 + 24 * 2 + 4
    assert model.get_layer("stem_conv").strides == (1, 1)
    assert model.output_shape == (None, 64)
    out = model(np.random.default_rng(0).normal(size=(2, 112, 112, 3)).astype(np.float32), training=False)
    assert np.all(np.isfinite(out.numpy()))


def test_prelu_and_leaky_models_differ_only_in_activation_parameters():
    prelu = trainable(build_backbone("resnet_v2_m_50", activation="prelu"))
    leaky = trainable(build_backbone("resnet_v2_m_50", activation="leaky_relu"))
    assert prelu > leaky  # PReLU learns one slope per channel per activation
    assert prelu - leaky < 0.001 * prelu


def test_saved_backbone_loads_without_custom_objects(tmp_path):
    model = build_backbone("iresnet50", embedding_size=32, input_size=112, dropout=0.2)
    path = tmp_path / "b.keras"
    model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    batch = np.random.default_rng(1).normal(size=(2, 112, 112, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded(batch, training=False), model(batch, training=False), rtol=1e-5, atol=1e-5)


def test_mobilefacenet_by_name():
    try:
        model = build_backbone("mobilefacenet", embedding_size=128, input_size=112)
    except ImportError:
        pytest.skip("facetrain/backbones/mobilefacenet.py is not there yet")
    assert model.output_shape == (None, 128)


def test_unknown_names_are_refused():
    with pytest.raises(ValueError):
        build_backbone("resnet9000")
    with pytest.raises(ValueError):
        build_backbone("iresnet50", activation="gelu")
