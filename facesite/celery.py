"""The Celery app. Configuration comes from Django settings (the CELERY_ block).

Logging: the worker uses Django's LOGGING (plain or JSON, facesite.log) instead of configuring
its own, and while a task runs every line carries its task id and, for recognition tasks, the
job id (the task's first argument), and the id of the web request that queued it (a message
header), so an upload can be followed from the web log into the worker's.
"""

import logging.config
import os
from typing import Any

from celery import Celery
from celery.signals import before_task_publish, setup_logging, task_postrun, task_prerun

from facesite.log import job_id_var, request_id_var, task_id_var

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facesite.settings.dev")

app = Celery("facesite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Tasks whose first argument is a RecognitionJob id.
JOB_TASK_PREFIX = "recognition."
REQUEST_ID_HEADER = "facesite_request_id"


@setup_logging.connect
def _use_django_logging(**kwargs: Any) -> None:
    """With a receiver here Celery leaves logging alone; apply the project's config, so worker
    lines look like web lines. The level is FACESITE_LOG_LEVEL (not the worker's -l)."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


def job_id_of(task_name: str, args: Any, kwargs: Any) -> Any:
    if not task_name.startswith(JOB_TASK_PREFIX):
        return None
    if kwargs and "job_id" in kwargs:
        return kwargs["job_id"]
    return args[0] if args else None


@before_task_publish.connect
def _pass_the_request_id(headers: dict | None = None, **extra: Any) -> None:
    request_id = request_id_var.get()
    if request_id and headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


# task id -> the tokens that restore the ids from before it (an eager task runs inside a
# request, whose ids must come back afterwards).
_saved_context: dict[str, tuple[Any, ...]] = {}
_VARS = (task_id_var, job_id_var, request_id_var)


@task_prerun.connect
def _bind_task_context(
    task_id: str | None = None, task: Any = None, args: Any = None, kwargs: Any = None, **extra: Any
) -> None:
    # A custom message header ends up as an attribute of the task's request; an eager task
    # keeps the request id it already runs under.
    queued_by = getattr(getattr(task, "request", None), REQUEST_ID_HEADER, None) or request_id_var.get()
    values = (task_id, job_id_of(getattr(task, "name", "") or "", args, kwargs), queued_by)
    tokens = tuple(var.set(value) for var, value in zip(_VARS, values, strict=True))
    if task_id is not None:
        _saved_context[task_id] = tokens


@task_postrun.connect
def _unbind_task_context(task_id: str | None = None, **extra: Any) -> None:
    # A pool process runs one task after another: the next one must not inherit these ids.
    tokens = _saved_context.pop(task_id, None) if task_id is not None else None
    for index, var in enumerate(_VARS):
        try:
            if tokens is None:
                raise ValueError("no tokens")
            var.reset(tokens[index])
        except ValueError:  # set in another context (or never): just clear it
            var.set(None)
