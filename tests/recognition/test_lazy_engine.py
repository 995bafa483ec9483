"""TensorFlow stays out of Django's start-up: migrate, the admin and the pages never load it."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "facesite.settings.test"
import django
django.setup()
from django.core.management import call_command
import facesite.urls, facesite.engine, recognition.views
call_command("check")
heavy = sorted(m for m in ("tensorflow", "keras", "onnxruntime", "faiss") if m in sys.modules)
print("HEAVY:" + ",".join(heavy))
"""


def test_django_setup_does_not_import_tensorflow():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY:\n" in result.stdout + "\n", result.stdout
