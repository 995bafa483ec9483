"""The Celery app. Configuration comes from Django settings (the CELERY_ block)."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facesite.settings.dev")

app = Celery("facesite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
