"""The one Django adapter of the engine: ``faceengine`` built from the settings on first use
and then reused by every app of this process.

TensorFlow is imported only when ``recognizer`` is first called, so ``migrate``, the admin
and the web pages start without it; a Celery worker loads it once per process. Callers use
``facesite.engine.recognizer()`` through the module (``from facesite import engine``), so
tests can swap the engine in one place.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

from django.conf import settings

import faceengine
from faceengine.embedders.registry import ModelSpec, load_model_spec
from faceengine.images import ImageLimits

if TYPE_CHECKING:
    from faceengine.calibration import OpenSetCalibration
    from faceengine.detection import DetectorConfig
    from faceengine.recognizer import Recognizer


def engine_settings() -> dict[str, Any]:
    return settings.FACESITE_ENGINE


def active_model_spec(name: str | None = None) -> ModelSpec:
    return load_model_spec(name or engine_settings()["MODEL"], settings.FACESITE_MODEL_DIR)


def model_calibration(name: str | None = None) -> OpenSetCalibration | None:
    """The open-set calibration of a model: the user's (``calibrate_model``) or the built-in one."""
    from faceengine.calibration import load_calibration

    return load_calibration(active_model_spec(name).name, settings.FACESITE_MODEL_DIR)


def image_limits() -> ImageLimits:
    return ImageLimits(max_bytes=settings.FACESITE_MAX_UPLOAD_BYTES, max_pixels=settings.FACESITE_MAX_IMAGE_PIXELS)


def detector_config() -> DetectorConfig:
    from faceengine.detection import DetectorConfig

    config = engine_settings()
    return DetectorConfig(
        detector=config["DETECTOR"],
        fallback=config["DETECTOR_FALLBACK"],
        yunet_score=config["YUNET_SCORE"],
        min_face_size=config["MIN_FACE_SIZE"],
        skip_finest_levels=config["DETECTION_SKIP_FINEST_LEVELS"],
        thresholds=tuple(config["STAGE_THRESHOLDS"]),
        max_side=config["DETECTION_MAX_SIDE"],
        min_score=config["MIN_DETECTION_SCORE"],
        num_threads=config["TF_THREADS"] or None,
        cache_dir=settings.FACESITE_MODEL_DIR / "mtcnn",
    )


def detectors_in_use() -> set[str]:
    """The detectors the settings name (the normal pass and the thorough pass's second one)."""
    config = engine_settings()
    return {name for name in (config["DETECTOR"], config["DETECTOR_FALLBACK"]) if name}


@functools.lru_cache(maxsize=4)
def get_recognizer(model_name: str | None = None, flip: bool | None = None) -> Recognizer:
    """The process-wide recognizer for a model (the configured one by default)."""
    config = engine_settings()
    threads = config["TF_THREADS"] or None
    if threads:
        _limit_tensorflow_threads(threads)
    return faceengine.load(
        settings.FACESITE_MODEL_DIR,
        model=active_model_spec(model_name).name,
        detector=detector_config(),
        flip=config["FLIP"] if flip is None else flip,
        limits=image_limits(),
        num_threads=threads,
    )


def recognizer(model_name: str | None = None) -> Recognizer:
    """The engine every app uses (enrolment, jobs, the engine API). Tests replace this one
    function to run the apps on a fake engine."""
    return get_recognizer(model_name)


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
