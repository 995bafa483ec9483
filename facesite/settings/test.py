"""Test settings: the database comes from DATABASE_URL (MariaDB in CI), SQLite otherwise."""

import os
import tempfile
from pathlib import Path

from .base import *  # noqa: F403

DEBUG = False
SECRET_KEY = "test-only-key"
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests never write into the real media folder; conftest gives each test its own folder too.
# A worker started by the worker tests is told the test's folder through FACESITE_MEDIA_ROOT.
MEDIA_ROOT = Path(os.environ.get("FACESITE_MEDIA_ROOT") or tempfile.mkdtemp(prefix="facesite-test-media-"))
# Whitenoise looks the files up per request instead of scanning STATIC_ROOT (which tests never
# fill) at start-up and warning that it is missing. Production serves the collected files.
WHITENOISE_AUTOREFRESH = True
