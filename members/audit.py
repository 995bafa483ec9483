"""The audit log's one write, called by members.services inside the transaction of each change.

Not a signal or a ``save()`` hook: the services know what changed and why (a face added is not
a member edited), and an entry written in the same transaction exists exactly when the change
committed. The request id comes from the request-id middleware's context variable.
"""

from __future__ import annotations

from typing import Any

from facesite.log import request_id_var

from .models import AuditEntry

SYSTEM = "system"


def actor_fields(actor: Any) -> dict[str, Any]:
    """The actor's key and username snapshot; None or an anonymous user is "system"."""
    if actor is None or not getattr(actor, "is_authenticated", False) or getattr(actor, "pk", None) is None:
        return {"actor": None, "actor_repr": SYSTEM}
    return {"actor": actor, "actor_repr": actor.get_username()[:150]}


def _request_id() -> str:
    # Set by facesite.request_id.RequestIdMiddleware for a request, and by the Celery signals for
    # a task queued by one (facesite.celery): a worker's entry names the request that asked.
    return (request_id_var.get() or "")[:128]


def audit_record(
    *, action: str, member_id: int, member_name: str, actor: Any = None, changes: dict[str, Any] | None = None
) -> AuditEntry:
    """One entry; call it inside the transaction that makes the change."""
    return AuditEntry.objects.create(
        action=action,
        member_id=member_id,
        member_name=member_name[:200],
        changes=changes or {},
        request_id=_request_id(),
        **actor_fields(actor),
    )
