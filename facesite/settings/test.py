"""Test settings: the database comes from DATABASE_URL (MariaDB in CI), SQLite otherwise."""
import tempfile
from pathlib import Path

from .base import *  # noqa: F401,F403

DEBUG = False
SECRET_KEY = "test-only-key"
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests never write into the real media folder; conftest gives each test its own folder too.
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="facesite-test-media-"))
