"""The gallery change log: a sequence number for every committed change of members' vectors.

Why a counter row and not the log's auto-increment id: MariaDB hands out auto-increment ids
when a row is inserted, not when its transaction commits, so transaction A can take 5, B take 6
and commit first; a worker that applied everything up to 6 would never apply 5. Here a writer
increments ``GalleryLogHead.seq`` (an UPDATE: the row stays locked until the writer's commit),
so a second writer waits for the first to commit or roll back before it gets its number:
numbers are handed out in commit order, without gaps, and "every change up to the head's
``seq`` is committed" holds for any reader of the committed head. The lock is taken last in
every transaction that changes the gallery (after the member rows), as the version token's
was, so it adds no lock-order cycle and is held only until the commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from ..models import GalleryChange, GalleryLogHead


def log_changes(member_ids: Iterable[int] | None) -> int:
    """Record that these members' vectors changed (None: anything may have changed) in the
    caller's transaction; returns the change's sequence number."""
    with transaction.atomic():  # a savepoint inside the caller's transaction; the lock stays
        if not GalleryLogHead.objects.filter(pk=1).update(seq=F("seq") + 1):
            try:
                with transaction.atomic():
                    GalleryLogHead.objects.create(pk=1, seq=1, epoch=uuid.uuid4().hex)
            except IntegrityError:  # created meanwhile by another writer
                GalleryLogHead.objects.filter(pk=1).update(seq=F("seq") + 1)
        # A locking read: the value this transaction just wrote, whatever its snapshot.
        seq = GalleryLogHead.objects.select_for_update().filter(pk=1).values_list("seq", flat=True).get()
        members: list[int | None] = [None]
        if member_ids is not None:
            members = [*sorted({int(m) for m in member_ids})]
        GalleryChange.objects.bulk_create([GalleryChange(seq=seq, member_id=m) for m in members])
    return int(seq)


def log_prune(*, keep_from: int, older_than_hours: float) -> int:
    """Delete log entries below sequence ``keep_from`` that are older than the retention;
    returns how many. ``pruned_through`` is committed first, so a worker that read the log
    before the deletion and re-reads it after sees that its changes may be incomplete (and
    rebuilds) rather than applying part of them."""
    cutoff = timezone.now() - timedelta(hours=older_than_hours)
    through = (
        GalleryChange.objects.filter(seq__lt=keep_from, created_at__lt=cutoff).aggregate(top=Max("seq"))["top"] or 0
    )
    if not through:
        return 0
    with transaction.atomic():
        GalleryLogHead.objects.filter(pk=1, pruned_through__lt=through).update(pruned_through=through)
    deleted, _ = GalleryChange.objects.filter(seq__lte=through).delete()
    return int(deleted)
