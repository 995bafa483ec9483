"""Exporting a network into the model folder, and serving it by name in every command.

A tiny Keras network is enough for the file plumbing; the imported default model runs the real
pipeline (enrolment, ``recognize --model``, ``evaluate --model``) and must agree with the TFLite file.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from faceengine.embedders.base import InputConvention
from faceengine.embedders.registry import DEFAULT_MODEL, build_embedder, load_model_spec
from faceengine.errors import ModelError
from tests.conftest import lfw_subset, model_dir, require_file

FR = "samples/face_recognition/examples"


def _tiny_model(seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((112, 112, 3))
    x = keras.layers.Conv2D(4, 3, strides=4, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(16)(x)
    return keras.Model(inputs, outputs)


def _faces(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 112, 112, 3), dtype=np.uint8)


def _expected(model, faces: np.ndarray) -> np.ndarray:
    raw = np.asarray(model(InputConvention().preprocess(faces)))
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


@pytest.fixture
def models(settings, tmp_path):
    """A model folder of the test's own, with the default model, YuNet and the MTCNN cache linked in."""
    from faceengine.yunet import YUNET_FILE

    folder = tmp_path / "models"
    folder.mkdir()
    for entry in (DEFAULT_MODEL.filename, YUNET_FILE.filename, "mtcnn"):
        if (model_dir() / entry).exists():
            (folder / entry).symlink_to(model_dir() / entry)
    settings.FACESITE_MODEL_DIR = folder
    return folder


@pytest.fixture
def fresh_engine():
    """get_recognizer caches per model name for the process: start and end without any."""
    from facesite.engine import get_recognizer
    from members.selectors import clear_gallery_cache

    get_recognizer.cache_clear()
    clear_gallery_cache()
    yield
    get_recognizer.cache_clear()
    clear_gallery_cache()


# ----------------------------------------------------------------------------- export_model()


def test_keras_export_writes_model_and_metadata_that_serve_the_same_vectors(models):
    from faceengine.model_fetch import sha256_of
    from facetrain.export import export_model

    model = _tiny_model()
    spec = export_model(model, name="tiny", model_dir=models, verification_threshold=0.3, identification_threshold=0.5)
    assert (spec.backend, spec.filename, spec.dim) == ("keras", "tiny.keras", 16)
    card = json.loads((models / "tiny.json").read_text())
    assert card["convention"] == {"color": "RGB", "mean": 127.5, "std": 128.0, "layout": "NHWC", "size": 112}
    assert (card["verification_threshold"], card["identification_threshold"]) == (0.3, 0.5)
    assert card["sha256"] == sha256_of(models / "tiny.keras")
    assert load_model_spec("tiny", models) == spec
    # No temporary file is left behind.
    assert sorted(p.name for p in models.iterdir() if not p.is_symlink()) == ["tiny.json", "tiny.keras"]

    embedder = build_embedder(spec, models)
    faces = _faces(3)
    np.testing.assert_allclose(embedder.embed(faces), _expected(model, faces), atol=1e-5)


def test_savedmodel_export_serves_the_same_vectors_and_is_replaced_on_reexport(models):
    from facetrain.export import export_model

    first, second = _tiny_model(seed=0), _tiny_model(seed=1)
    faces = _faces(5)
    spec = export_model(first, name="tiny-saved", model_dir=models, fmt="savedmodel")
    assert (spec.backend, spec.filename) == ("savedmodel", "tiny-saved")
    assert (models / "tiny-saved" / "saved_model.pb").is_file()
    np.testing.assert_allclose(
        build_embedder(load_model_spec("tiny-saved", models), models).embed(faces), _expected(first, faces), atol=1e-5
    )

    export_model(second, name="tiny-saved", model_dir=models, fmt="savedmodel")
    served = build_embedder(load_model_spec("tiny-saved", models), models).embed(faces)
    np.testing.assert_allclose(served, _expected(second, faces), atol=1e-5)
    assert not np.allclose(served, _expected(first, faces), atol=1e-3)
    assert sorted(p.name for p in models.iterdir() if not p.is_symlink()) == ["tiny-saved", "tiny-saved.json"]


def test_default_thresholds_keep_the_1n_bar_above_the_11_one(models):
    from facetrain.export import export_model

    model = _tiny_model()
    spec = export_model(model, name="a", model_dir=models)
    assert (spec.verification_threshold, spec.identification_threshold) == (0.4, 0.55)
    spec = export_model(model, name="b", model_dir=models, verification_threshold=0.62)
    assert (spec.verification_threshold, spec.identification_threshold) == (0.62, 0.62)


@pytest.mark.parametrize("name", ["mobilefacenet", "../evil", "a/b", "", "x.json", ".hidden"])
def test_export_refuses_builtin_and_unsafe_names(models, name):
    from facetrain.export import export_model

    with pytest.raises(ModelError, match="builtin" if name == "mobilefacenet" else "Bad model name"):
        export_model(_tiny_model(), name=name, model_dir=models)
    assert not [p for p in models.iterdir() if not p.is_symlink()]
    assert load_model_spec("mobilefacenet", models) == DEFAULT_MODEL


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"verification_threshold": 1.5}, "cosine similarity in"),
        ({"convention": {"size": 160}}, "takes 112x112"),
        ({"convention": {"colour": "RGB"}}, "Unknown keys"),
        ({"convention": {"layout": "CHWN"}}, "layout NHWC/NCHW"),
        ({"fmt": "onnx"}, "format must be one of"),
    ],
)
def test_export_refuses_bad_metadata(models, kwargs, message):
    from facetrain.export import export_model

    with pytest.raises(ModelError, match=message):
        export_model(_tiny_model(), name="tiny", model_dir=models, **kwargs)
    assert not (models / "tiny.json").exists()


def test_export_refuses_a_model_that_is_not_an_embedder(models):
    import keras

    from facetrain.export import export_model

    inputs = keras.Input((112, 112, 3))
    feature_map = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs))
    with pytest.raises(ModelError, match="maps"):
        export_model(feature_map, name="maps", model_dir=models)


# ------------------------------------------------------------------ metadata read by the engine


def test_metadata_that_lies_about_the_dimension_is_refused_at_load(models):
    from facetrain.export import export_model

    export_model(_tiny_model(), name="tiny", model_dir=models)
    card = json.loads((models / "tiny.json").read_text())
    card["dim"] = 192
    (models / "tiny.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="metadata says 192-d"):
        build_embedder(load_model_spec("tiny", models), models)


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "Bad model metadata"),
        ('{"name": "tiny", "backend": "keras", "filename": "tiny.keras", "dim": 16, "extra": 1}', "Unknown keys"),
        ('{"name": "tiny", "backend": "pytorch", "filename": "tiny.pt", "dim": 16}', "backend must be one of"),
    ],
)
def test_broken_metadata_gives_a_clear_error(models, text, message):
    (models / "tiny.json").write_text(text)
    with pytest.raises(ModelError, match=message):
        load_model_spec("tiny", models)


def test_a_corrupt_model_file_gives_a_clear_error(models):
    from facetrain.export import export_model

    spec = export_model(_tiny_model(), name="tiny", model_dir=models)
    (models / "tiny.keras").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ModelError, match="Cannot load model"):
        build_embedder(spec, models)


# ----------------------------------------------------------------------- manage.py export_model


def _training_run(tmp_path, *, embedding_size: int = 16, convention: dict | None = None):
    run = tmp_path / "run"
    run.mkdir()
    _tiny_model().save(run / "backbone.keras")
    (run / "run.json").write_text(
        json.dumps(
            {
                "backbone": "tiny",
                "embedding_size": embedding_size,
                "step": 100,
                "classes": 10,
                "convention": convention
                or {"color": "RGB", "mean": 127.5, "std": 128.0, "layout": "NHWC", "size": 112},
            }
        )
    )
    return run


def test_command_exports_a_training_run(models, tmp_path):
    run = _training_run(tmp_path)
    out = io.StringIO()
    call_command("export_model", "--run", str(run), "--name", "run-model", "--threshold", "0.35", stdout=out)
    assert "Exported run-model (keras, 16-d)" in out.getvalue()
    spec = load_model_spec("run-model", models)
    assert (spec.dim, spec.verification_threshold, spec.identification_threshold) == (16, 0.35, 0.55)
    assert spec.source["run"] == str(run.resolve()) and spec.source["step"] == 100
    import keras

    backbone = keras.models.load_model(run / "backbone.keras")
    faces = _faces(4)
    np.testing.assert_allclose(build_embedder(spec, models).embed(faces), _expected(backbone, faces), atol=1e-5)


@pytest.mark.parametrize(
    "breakage, message",
    [
        ("no_run_json", "run.json not found"),
        ("wrong_size", "embedding_size 512"),
        ("bad_convention", "takes 112x112"),
        ("not_json", "Bad run metadata"),
    ],
)
def test_command_refuses_a_broken_training_run(models, tmp_path, breakage, message):
    if breakage == "wrong_size":
        run = _training_run(tmp_path, embedding_size=512)
    elif breakage == "bad_convention":
        run = _training_run(tmp_path, convention={"color": "RGB", "size": 96})
    else:
        run = _training_run(tmp_path)
        if breakage == "no_run_json":
            (run / "run.json").unlink()
        else:
            (run / "run.json").write_text("{oops")
    with pytest.raises(CommandError, match=message):
        call_command("export_model", "--run", str(run), "--name", "broken", stdout=io.StringIO())
    assert not (models / "broken.json").exists()


def test_command_refuses_the_builtin_name_and_needs_a_source(models, tmp_path):
    with pytest.raises(CommandError, match="builtin"):
        call_command(
            "export_model", "--run", str(_training_run(tmp_path)), "--name", "mobilefacenet", stdout=io.StringIO()
        )
    with pytest.raises(CommandError, match=r"--run --from-default|one of the arguments"):
        call_command("export_model", "--name", "x", stdout=io.StringIO())


@pytest.mark.django_db
def test_recognize_command_with_an_exported_model(models, tmp_path, fresh_engine):
    """Plumbing: the command builds the engine from the exported file, named by --model."""
    require_file(f"{FR}/knn_examples/test/obama_and_biden.jpg")
    call_command("export_model", "--run", str(_training_run(tmp_path)), "--name", "tiny", stdout=io.StringIO())
    out = io.StringIO()
    call_command(
        "recognize",
        str(require_file(f"{FR}/knn_examples/test/obama_and_biden.jpg")),
        "--model",
        "tiny",
        "--json",
        stdout=out,
    )
    result = json.loads(out.getvalue())[0]
    assert result["error"] is None and len(result["faces"]) == 3
    from facesite.engine import get_recognizer

    assert (get_recognizer("tiny").model_name, get_recognizer("tiny").dim) == ("tiny", 16)
    with pytest.raises(CommandError, match="Unknown model 'nope'"):
        call_command("recognize", str(tmp_path), "--model", "nope", stdout=io.StringIO())


# -------------------------------------------------- the imported default, through the pipeline


@pytest.fixture
def exported_default(models, default_embedder, fresh_engine):
    call_command("export_model", "--from-default", "--name", "mobilefacenet-keras", stdout=io.StringIO())
    return load_model_spec("mobilefacenet-keras", models)


def test_from_default_carries_the_default_identity_and_vectors(exported_default, models, default_embedder):
    spec = exported_default
    faces = _faces(7, seed=4)
    served = build_embedder(spec, models).embed(faces)
    assert np.einsum("ij,ij->i", served, default_embedder.embed(faces)).min() > 0.9999
    assert (spec.backend, spec.dim, spec.convention) == ("keras", 192, DEFAULT_MODEL.convention)
    assert spec.verification_threshold == DEFAULT_MODEL.verification_threshold
    assert spec.identification_threshold == DEFAULT_MODEL.identification_threshold
    assert spec.source["sha256"] == DEFAULT_MODEL.sha256


@pytest.mark.slow
@pytest.mark.django_db
def test_enrol_and_recognize_with_the_exported_default(settings, media_root, exported_default):
    from members.models import Embedding
    from members.services import member_create

    settings.FACESITE_ENGINE = {**settings.FACESITE_ENGINE, "MODEL": "mobilefacenet-keras"}
    train = f"{FR}/knn_examples/train"
    member_create(display_name="Barack Obama", photos=[require_file(f"{train}/obama/obama.jpg")])
    member_create(display_name="Joe Biden", photos=[require_file(f"{train}/biden/biden2.jpg")])
    assert set(Embedding.objects.values_list("model_name", "dim")) == {("mobilefacenet-keras", 192)}
    out = io.StringIO()
    call_command(
        "recognize",
        str(require_file(f"{FR}/knn_examples/test/obama_and_biden.jpg")),
        "--model",
        "mobilefacenet-keras",
        "--json",
        stdout=out,
    )
    faces = sorted(json.loads(out.getvalue())[0]["faces"], key=lambda f: f["box"][0])
    assert [f["member"] for f in faces] == ["Joe Biden", "Barack Obama", None]


@pytest.mark.slow
def test_evaluate_gives_the_default_models_result_and_measure_lfw_stores_it(
    settings, models, tmp_path, default_embedder, fresh_engine
):
    # --measure-lfw measures as the engine serves (FACESITE_FLIP); evaluate below runs unflipped.
    settings.FACESITE_ENGINE = {**settings.FACESITE_ENGINE, "FLIP": False}
    data = lfw_subset(tmp_path)
    results = {}
    for model in ("mobilefacenet", "mobilefacenet-measured"):
        if model != "mobilefacenet":
            out = io.StringIO()
            call_command(
                "export_model",
                "--from-default",
                "--name",
                model,
                "--measure-lfw",
                str(data),
                "--no-progress",
                stdout=out,
            )
            assert "LFW: accuracy" in out.getvalue()
        report = tmp_path / f"{model}.json"
        call_command(
            "evaluate",
            "--benchmark",
            "lfw",
            "--data",
            str(data),
            "--model",
            model,
            "--json",
            str(report),
            "--no-progress",
            stdout=io.StringIO(),
        )
        results[model] = json.loads(report.read_text())["lfw"]
    default, imported = results["mobilefacenet"], results["mobilefacenet-measured"]
    assert default["pairs"] == imported["pairs"] == 60
    assert imported["accuracy"] == default["accuracy"] >= 0.95
    assert imported["threshold"] == pytest.approx(default["threshold"], abs=0.01)
    assert imported["auc"] == pytest.approx(default["auc"], abs=1e-3)
    spec = load_model_spec("mobilefacenet-measured", models)
    # --measure-lfw stored the protocol's threshold (same flip setting as evaluate here: off).
    assert spec.verification_threshold == pytest.approx(spec.source["lfw"]["threshold"])
    assert spec.verification_threshold == pytest.approx(imported["threshold"], abs=1e-6)
    assert spec.source["lfw"]["accuracy"] == imported["accuracy"]
