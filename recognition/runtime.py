"""The engine for this process, built from Django settings on first use and then reused.

TensorFlow is imported only when ``get_recognizer`` is first called, so ``migrate``, the admin
and the web pages start without it; a Celery worker loads it once per process.
"""
from __future__ import annotations

import functools
import os

from django.conf import settings

from typing import TYPE_CHECKING

from recognition.engine.embedders.registry import ModelSpec, build_embedder, load_model_spec
from recognition.engine.images import ImageLimits

if TYPE_CHECKING:
    from recognition.engine.detection import DetectorConfig
    from recognition.engine.recognizer import Recognizer


def engine_settings() -> dict:
    return settings.FACESITE_ENGINE


def active_model_spec(name: str | None = None) -> ModelSpec:
    return load_model_spec(name or engine_settings()["MODEL"], settings.FACESITE_MODEL_DIR)


def image_limits() -> ImageLimits:
    return ImageLimits(max_bytes=settings.FACESITE_MAX_UPLOAD_BYTES,
                       max_pixels=settings.FACESITE_MAX_IMAGE_PIXELS)


def detector_config() -> "DetectorConfig":
    from recognition.engine.detection import DetectorConfig

    config = engine_settings()
    return DetectorConfig(
        min_face_size=config["MIN_FACE_SIZE"],
        skip_finest_levels=config["DETECTION_SKIP_FINEST_LEVELS"],
        thresholds=tuple(config["STAGE_THRESHOLDS"]),
        max_side=config["DETECTION_MAX_SIDE"],
        min_score=config["MIN_DETECTION_SCORE"],
        num_threads=config["TF_THREADS"] or None,
        cache_dir=settings.FACESITE_MODEL_DIR / "mtcnn",
    )


@functools.lru_cache(maxsize=4)
def get_recognizer(model_name: str | None = None, flip: bool | None = None) -> "Recognizer":
    """The process-wide recognizer for a model (the configured one by default)."""
    from recognition.engine.detection import FaceDetector
    from recognition.engine.recognizer import Recognizer

    config = engine_settings()
    threads = config["TF_THREADS"] or None
    if threads:
        _limit_tensorflow_threads(threads)
    spec = active_model_spec(model_name)
    embedder = build_embedder(spec, settings.FACESITE_MODEL_DIR, num_threads=threads)
    return Recognizer(FaceDetector(detector_config()), embedder,
                      flip=config["FLIP"] if flip is None else flip, limits=image_limits())


def _limit_tensorflow_threads(threads: int) -> None:
    """Cap TensorFlow's own thread pools for this worker process (TFLite interpreters get
    ``num_threads`` directly). Several workers on one machine then share its cores instead of
    each assuming all of them."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        # TensorFlow already ran an op in this process; its pools are fixed by now.
        pass
