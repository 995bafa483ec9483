"""The engine for a worker process: built once, from settings, with its thread budget."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT, model_dir

SCRIPT = """
import django
django.setup()
from facesite.engine import get_recognizer
recognizer = get_recognizer()
import tensorflow as tf
assert get_recognizer() is recognizer  # once per process
print("THREADS", tf.config.threading.get_intra_op_parallelism_threads(),
      recognizer.detector.config.num_threads, recognizer.detector._mtcnn.num_threads)
"""


def test_tf_threads_setting_caps_every_pool(default_embedder):
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="facesite.settings.test",
        FACESITE_TF_THREADS="1",
        FACESITE_MODEL_DIR=str(model_dir()),
    )
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "THREADS 1 1 1" in result.stdout
