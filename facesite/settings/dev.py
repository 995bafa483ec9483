"""The embedded default: SQLite, eager Celery, DEBUG on, a throwaway secret key.

Everything here is for one person on one laptop; production settings live in prod.py.
"""

from .base import *  # noqa: F403
from .env import env_str

DEBUG = True
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "dev-only-insecure-key-never-use-in-production")
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
