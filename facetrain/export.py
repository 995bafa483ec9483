"""Exporting an embedding model into the model folder, where the engine serves it by name.

An export is two things: the network (``<name>.keras``, or a SavedModel folder ``<name>``) and its
identity card ``<name>.json`` (backend, file, dimension, input convention, thresholds), read by
``faceengine.embedders.registry``. Both are written under temporary names and renamed into
place, the card last, so the engine never sees a card pointing at a half-written network.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from faceengine.embedders.base import InputConvention
from faceengine.embedders.registry import (
    BUILTIN_MODELS,
    DEFAULT_MODEL,
    ModelSpec,
    save_model_spec,
)
from faceengine.errors import ModelError
from faceengine.model_fetch import sha256_of

FORMATS = {"keras": "keras", "savedmodel": "savedmodel"}  # format -> registry backend
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_export_name(name: str) -> None:
    """A model name is a file name in the model folder: plain, and not a builtin's."""
    if not NAME_PATTERN.match(name or "") or name.endswith((".json", ".keras", ".tmp")):
        raise ModelError(
            f"Bad model name {name!r}: use letters, digits, '.', '_' and '-' (up to 64 characters, no extension)."
        )
    if name in BUILTIN_MODELS:
        raise ModelError(f"{name!r} is a builtin model's name; export under another name.")


def _as_convention(convention: InputConvention | dict | None, size: int) -> InputConvention:
    if convention is None:
        return dataclasses.replace(DEFAULT_MODEL.convention, size=size)
    if isinstance(convention, dict):
        unknown = set(convention) - {"color", "mean", "std", "layout", "size"}
        if unknown:
            raise ModelError(f"Unknown keys in the input convention: {sorted(unknown)}.")
        try:
            convention = InputConvention.from_dict(convention)
        except TypeError as exc:
            raise ModelError(f"Bad input convention: {exc}") from exc
    if convention.color not in ("RGB", "BGR") or convention.layout not in ("NHWC", "NCHW"):
        raise ModelError(f"Bad input convention {convention}: color RGB/BGR, layout NHWC/NCHW.")
    if not isinstance(convention.size, int) or convention.size != size:
        raise ModelError(
            f"The input convention says {convention.size}x{convention.size} faces but the model takes {size}x{size}."
        )
    if not float(convention.std) > 0:
        raise ModelError(f"The input convention's std must be positive, got {convention.std}.")
    return convention


def _model_shapes(model) -> tuple[int, int]:
    """(input size, embedding dimension) of a Keras embedding model, checked."""
    input_shape, output_shape = tuple(model.input_shape), tuple(model.output_shape)
    if len(input_shape) != 4 or len(output_shape) != 2 or output_shape[1] is None:
        raise ModelError(
            f"An embedding model maps (n, size, size, 3) faces to (n, dim) vectors; "
            f"this one maps {input_shape} to {output_shape}."
        )
    size = input_shape[1] if input_shape[-1] == 3 else input_shape[2]
    if size is None:
        raise ModelError(f"The model's input size is not fixed: {input_shape}.")
    return int(size), int(output_shape[1])


def _check_threshold(label: str, value: float) -> float:
    value = float(value)
    if not -1.0 <= value <= 1.0:
        raise ModelError(f"The {label} threshold is a cosine similarity in [-1, 1], got {value}.")
    return value


def export_model(
    model,
    *,
    name: str,
    model_dir: Path,
    convention: InputConvention | dict | None = None,
    verification_threshold: float | None = None,
    identification_threshold: float | None = None,
    fmt: str = "keras",
    source: dict | None = None,
) -> ModelSpec:
    """Write ``model`` and its metadata into ``model_dir`` as ``name``; return the spec written.

    ``convention`` defaults to the default model's ((x - 127.5) / 128, RGB, NHWC) at the model's
    input size. Unset thresholds take the registry's defaults; the 1:N threshold is never below
    the 1:1 one. Re-exporting under the same name replaces the earlier export.
    """
    check_export_name(name)
    if fmt not in FORMATS:
        raise ModelError(f"Export format must be one of {sorted(FORMATS)}, got {fmt!r}.")
    size, dim = _model_shapes(model)
    convention = _as_convention(convention, size)
    defaults = ModelSpec(name=name, backend=FORMATS[fmt], filename="", dim=dim)
    verification = _check_threshold(
        "verification", defaults.verification_threshold if verification_threshold is None else verification_threshold
    )
    identification = _check_threshold(
        "identification",
        max(defaults.identification_threshold, verification)
        if identification_threshold is None
        else identification_threshold,
    )

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "keras":
        filename = f"{name}.keras"
        _save_keras_atomically(model, model_dir / filename)
        digest = sha256_of(model_dir / filename)
    else:
        filename = name
        _save_savedmodel_atomically(model, model_dir / filename)
        digest = None  # a folder has no single checksum
    spec = ModelSpec(
        name=name,
        backend=FORMATS[fmt],
        filename=filename,
        dim=dim,
        convention=convention,
        verification_threshold=verification,
        identification_threshold=identification,
        sha256=digest,
        source=source,
    )
    save_model_spec(spec, model_dir)
    return spec


def _save_keras_atomically(model, target: Path) -> None:
    # Keras insists on the .keras suffix, so the temporary name keeps it.
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".keras")
    os.close(fd)
    try:
        model.save(tmp_name)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _save_savedmodel_atomically(model, target: Path) -> None:
    tmp_dir = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    staged = tmp_dir / "model"
    try:
        # Keras 3: a TF SavedModel whose serving_default takes a free batch of the input shape.
        model.export(str(staged), format="tf_saved_model", verbose=False)
        old = None
        if target.exists():
            # A folder cannot be replaced in one rename: move the old one aside first.
            old = tmp_dir / "old"
            target.rename(old)
        staged.rename(target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


Progress = Callable[[Iterable], Iterable]


def measure_lfw(
    model,
    *,
    lfw_dir: Path,
    convention: InputConvention,
    detector_config,
    flip: bool,
    pairs_file: str = "pairs.txt",
    progress: Progress = lambda items: items,
):
    """Run the LFW 10-fold protocol on an in-memory model through the whole pipeline (MTCNN,
    alignment, this embedder); returns the runner's BenchmarkReport, whose ``result.threshold``
    (the mean of the per-fold thresholds) is what an export stores as its 1:1 threshold."""
    from faceengine.detection import FaceDetector
    from faceengine.embedders.keras import KerasEmbedder
    from faceengine.evaluation.datasets import read_lfw
    from faceengine.evaluation.runner import evaluate_pairset
    from faceengine.recognizer import Recognizer

    _, dim = _model_shapes(model)
    pairset = read_lfw(Path(lfw_dir), pairs_file)
    embedder = KerasEmbedder.from_model(model, name="candidate", dim=dim, convention=convention)
    recognizer = Recognizer(FaceDetector(detector_config), embedder, flip=flip)
    return evaluate_pairset(pairset, recognizer, progress)


def load_training_run(run_dir: Path):
    """(backbone, input convention, run.json) of a training run folder, checked against each other.

    The trainer writes ``backbone.keras`` (the embedding model alone) and ``run.json`` (with at
    least ``embedding_size`` and ``convention``) into its ``--out`` folder.
    """
    import json

    import keras

    run_dir = Path(run_dir)
    backbone_path, run_path = run_dir / "backbone.keras", run_dir / "run.json"
    for path in (backbone_path, run_path):
        if not path.is_file():
            raise ModelError(
                f"{path} not found: --run must be a training run folder (with backbone.keras and run.json)."
            )
    try:
        run = json.loads(run_path.read_text())
    except ValueError as exc:
        raise ModelError(f"Bad run metadata in {run_path}: {exc}") from exc
    if not isinstance(run, dict) or "embedding_size" not in run or "convention" not in run:
        raise ModelError(f"Bad run metadata in {run_path}: it needs 'embedding_size' and 'convention'.")
    try:
        model = keras.models.load_model(backbone_path, compile=False)
    except Exception as exc:  # Keras raises many kinds on a corrupt file
        raise ModelError(f"Cannot load {backbone_path}: {exc}") from exc
    size, dim = _model_shapes(model)
    if not isinstance(run["convention"], dict):
        raise ModelError(f"Bad run metadata in {run_path}: 'convention' must be an object.")
    convention = _as_convention(run["convention"], size)
    if run["embedding_size"] != dim:
        raise ModelError(
            f"Bad run metadata in {run_path}: embedding_size {run['embedding_size']!r} "
            f"but {backbone_path.name} gives {dim}-d vectors."
        )
    return model, convention, run
