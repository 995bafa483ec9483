"""What photo jobs and video jobs share about claims: a run writes its outcome only while it
holds the latest claim (its attempt number is the fencing token), and a job out of attempts is
failed with the reason."""

from __future__ import annotations

import logging
from typing import Any

from django.db import models
from django.utils import timezone

logger = logging.getLogger(__name__)

FINISHED = ("done", "failed", "cancelled")


def finish_if_latest(model: type[models.Model], pk: int, attempt: int, what: str, **fields: Any) -> bool:
    """Write the outcome of attempt ``attempt`` if no newer claim took the job over."""
    written = model._default_manager.filter(pk=pk, status="running", attempts=attempt).update(
        finished_at=timezone.now(), **fields
    )
    if not written:
        logger.warning("%s %s was taken over by a newer claim; attempt %d's outcome dropped.", what, pk, attempt)
    return bool(written)


def fail_interrupted(model: type[models.Model], pk: int, attempts: int, what: str) -> str:
    """Fail a job every attempt of which was interrupted (its worker died or was killed), unless
    a run finished it meanwhile; returns the reason written."""
    message = (
        f"The {what} was interrupted {attempts} time(s): the worker stopped while running it "
        f"(killed, out of memory, or over the time limit). It was not tried again."
    )
    model._default_manager.filter(pk=pk, attempts=attempts).exclude(status__in=FINISHED).update(
        status="failed", error_code="interrupted", error_message=message, finished_at=timezone.now()
    )
    return message
