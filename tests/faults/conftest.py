"""Fixtures of the fault tests: private servers to kill, a broker on them, a full disk."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from tests.faults.servers import ServerUnavailable, private_mariadb, private_redis

# A tmpfs this small holds a few LFW photos (~15 kB) but not a sample photo of ~100 kB.
FULL_DISK_SIZE = "64k"


@pytest.fixture
def mariadb_server():
    try:
        with private_mariadb() as server:
            yield server
    except ServerUnavailable as exc:
        pytest.skip(f"no private MariaDB: {exc}")


@pytest.fixture
def redis_server():
    try:
        with private_redis() as server:
            yield server
    except ServerUnavailable as exc:
        pytest.skip(f"no private Redis: {exc}")


@pytest.fixture
def full_disk(tmp_path, settings) -> Path:
    """MEDIA_ROOT on a real 64 kB tmpfs (we run as root in CI), unmounted at the end."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={FULL_DISK_SIZE}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()}); the disk-full tests need root")
    settings.MEDIA_ROOT = mount_point
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def fill(root: Path, leave: int = 0) -> None:
    """Fill the filesystem at ``root`` up to ``leave`` bytes free."""
    with open(root / "ballast", "wb") as handle:
        try:
            while True:
                free = os.statvfs(root).f_bavail * os.statvfs(root).f_frsize
                if free <= leave:
                    break
                handle.write(b"\0" * min(4096, free - leave))
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
