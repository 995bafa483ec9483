"""Gallery index snapshots in the shared folder: where they live, writing them, and pruning the
change log behind them.

A snapshot is the index of one gallery (model, dimension, match mode) as one process has it,
with the change-log position it is current to (faceengine.snapshot has the file format). A
starting worker loads it and applies the log from that position (members.selectors); the log
is pruned only below the oldest position a current snapshot needs, and only past the retention,
so a worker that is behind by less than the retention still catches up from the log.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from faceengine.snapshot import SnapshotError, snapshot_info, write_snapshot

logger = logging.getLogger(__name__)

SUFFIX = ".snapshot"


def snapshot_dir() -> Path:
    """FACESITE_GALLERY_SNAPSHOT_DIR, or MEDIA_ROOT/gallery-snapshots when it is not set."""
    configured = str(getattr(settings, "FACESITE_GALLERY_SNAPSHOT_DIR", "") or "")
    return Path(configured) if configured else Path(settings.MEDIA_ROOT) / "gallery-snapshots"


def snapshot_path(model_name: str, dim: int, match: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", model_name)
    return snapshot_dir() / f"gallery-{safe}-{int(dim)}-{match}{SUFFIX}"


@dataclass(frozen=True)
class SnapshotWritten:
    path: str
    model_name: str
    dim: int
    match: str
    seq: int
    vectors: int
    backend: str
    seconds: float
    bytes: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def snapshot_write(*, model_name: str, dim: int, match: str) -> SnapshotWritten:
    """Bring this process's index of the gallery up to date and write it as the snapshot."""
    from .selectors import gallery_cached

    started = time.perf_counter()
    cached = gallery_cached(model_name=model_name, dim=dim, match=match)
    path = snapshot_path(model_name, dim, match)
    info = write_snapshot(path, cached.index, seq=cached.seq, epoch=cached.epoch, match=match)
    written = SnapshotWritten(
        str(path),
        model_name,
        int(dim),
        match,
        info.seq,
        info.vectors,
        info.backend,
        round(time.perf_counter() - started, 3),
        path.stat().st_size,
    )
    logger.info("Gallery snapshot written: %s", written.as_dict())
    return written


def snapshots_write_active() -> list[SnapshotWritten]:
    """Snapshots of the active model's gallery in the configured match mode."""
    from facesite.engine import active_model_spec

    from .selectors import gallery_settings

    spec = active_model_spec()
    return [snapshot_write(model_name=spec.name, dim=spec.dim, match=gallery_settings()["MATCH"])]


def oldest_snapshot_seq() -> int | None:
    """The lowest log position among the usable snapshots in the folder (None: none)."""
    seqs = []
    for path in sorted(snapshot_dir().glob(f"gallery-*{SUFFIX}")):
        try:
            seqs.append(snapshot_info(path).seq)
        except (SnapshotError, OSError) as exc:
            logger.warning("Gallery snapshot %s unreadable (%s); ignored for pruning.", path, exc)
    return min(seqs) if seqs else None


def log_prune_behind_snapshots() -> int:
    """Delete change-log entries that every snapshot covers and that are past the retention."""
    from .services.gallery_log import log_prune

    oldest = oldest_snapshot_seq()
    if oldest is None:
        return 0
    hours = float(getattr(settings, "FACESITE_GALLERY_LOG_RETENTION_HOURS", 24.0))
    deleted = log_prune(keep_from=oldest + 1, older_than_hours=hours)
    if deleted:
        logger.info("Gallery change log: %d entries up to change %d pruned.", deleted, oldest)
    return deleted
