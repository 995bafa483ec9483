"""faceengine: face detection, alignment, embedding and matching. Plain Python with
TensorFlow/TFLite, onnxruntime and OpenCV; it never imports Django.

Nothing here imports TensorFlow at module import time; the heavy modules are loaded when a
detector or embedder is first built, so Django commands such as ``migrate`` stay light.

The one call that builds a working recognizer::

    import faceengine
    recognizer = faceengine.load("var/models")            # MTCNN + the default model
    faces = recognizer.analyze("photo.jpg")                  # boxes, landmarks, embeddings
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .detection import DetectorConfig
    from .images import ImageLimits
    from .recognizer import Recognizer

__all__ = ["load"]

DEFAULT_MODEL_NAME = "mobilefacenet"


def load(
    model_dir: str | os.PathLike,
    *,
    model: str = DEFAULT_MODEL_NAME,
    detector: DetectorConfig | None = None,
    flip: bool = False,
    limits: ImageLimits | None = None,
    num_threads: int | None = None,
) -> Recognizer:
    """A recognizer: the detector, the alignment and the embedder ``model`` from ``model_dir``.

    ``model`` is the default model's name or that of a ``<name>.json`` beside its weights in
    ``model_dir`` (an exported or a user's ONNX model). ``detector`` defaults to MTCNN with its
    converted graphs cached under ``model_dir/mtcnn``, and YuNet (``model_dir/<its file>``) as the
    second detector of the thorough pass; a detector whose file is missing is a ``ModelError``.
    Every Django process goes through ``facesite.engine``, which calls this with the settings;
    benchmarks call it directly.
    """
    from dataclasses import replace

    from .detection import DetectorConfig, FaceDetector
    from .embedders.registry import build_embedder, load_model_spec
    from .errors import ModelError
    from .images import ImageLimits
    from .recognizer import Recognizer
    from .yunet import YUNET_FILE

    model_dir = Path(model_dir)
    spec = load_model_spec(model, model_dir)
    embedder = build_embedder(spec, model_dir, num_threads=num_threads)
    config = detector or DetectorConfig(num_threads=num_threads)
    if config.cache_dir is None:
        config = replace(config, cache_dir=model_dir / "mtcnn")
    if config.yunet_model is None and "yunet" in (config.detector, config.fallback):
        yunet = model_dir / YUNET_FILE.filename
        if not yunet.is_file():
            raise ModelError(f"The YuNet detector is not in {model_dir}: run `manage.py fetch_models`.")
        config = replace(config, yunet_model=yunet)
    return Recognizer(FaceDetector(config), embedder, flip=flip, limits=limits or ImageLimits())
