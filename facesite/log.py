"""Logging wiring: who a log line is about (request, job, task, user) and how it is written.

The request-id middleware and the Celery task signals put the current request / job into
context variables; the formatters read them, so every line logged anywhere during a request
or a task carries its id without the caller passing it along. Context variables (not thread
locals) keep gunicorn's threads and Celery's pool processes apart.

Named ``log`` so that it never shadows the standard library's ``logging``. Importable without
Django settings: gunicorn's own logging config (facesite/gunicorn.py) uses these formatters.
"""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# The HttpRequest itself, so the user id can be read once authentication has run (see _user_id).
request_var: contextvars.ContextVar[Any] = contextvars.ContextVar("request", default=None)
job_id_var: contextvars.ContextVar[Any] = contextvars.ContextVar("job_id", default=None)
task_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_id", default=None)

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _user_id(request: Any) -> Any:
    """The user's id if authentication already resolved it; never triggers a lookup itself
    (a database query from inside a log call could recurse or fail mid-error)."""
    if request is None:
        return None
    attrs = getattr(request, "__dict__", {})
    user = attrs.get("user")
    # AuthenticationMiddleware puts a lazy object there and caches the real user in
    # _cached_user once something used it; DRF assigns the authenticated user directly.
    if user is not None and type(user).__name__ == "SimpleLazyObject":
        user = attrs.get("_cached_user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return getattr(user, "pk", None)


def current_context() -> dict[str, Any]:
    """The ids of what this thread is working on now (None where unknown)."""
    return {
        "request_id": request_id_var.get(),
        "job_id": job_id_var.get(),
        "task_id": task_id_var.get(),
        "user_id": _user_id(request_var.get()),
    }


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in vars(record).items() if key not in _RECORD_ATTRS and not key.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context ids, the
    exception if any, and whatever the caller passed in ``extra``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **current_context(),
            "process": record.process,
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        for key, value in _extras(record).items():
            entry.setdefault(key, value)
        # default=str: an odd object in ``extra`` must not lose the whole line.
        return json.dumps(entry, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """Readable lines for a terminal; the context ids follow in brackets when there are any."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, style: str = "%") -> None:
        super().__init__(fmt or "%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt, style)  # type: ignore[arg-type]

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(f"{key}={value}" for key, value in current_context().items() if value is not None)
        if not ids:
            return line
        first, newline, rest = line.partition("\n")  # keep a traceback below the ids
        return f"{first} [{ids}]{newline}{rest}"


FORMATTERS = {"json": JsonFormatter, "plain": PlainFormatter}


def logging_config(fmt: str = "plain", level: str = "INFO") -> dict:
    """The LOGGING dict: everything to stderr through one handler, in ``fmt`` (json | plain)."""
    if fmt not in FORMATTERS:
        # Imported lazily: gunicorn reads this module before Django is set up.
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"LOG_FORMAT must be one of {sorted(FORMATTERS)}, got {fmt!r}.")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": f"{__name__}.{FORMATTERS[fmt].__name__}"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "default"}},
        "root": {"handlers": ["console"], "level": level},
        # Django's default config gives "django" a console handler of its own (DEBUG only) that
        # would print each line twice; send everything through the root handler instead.
        "loggers": {"django": {"handlers": [], "level": level, "propagate": True}},
    }
