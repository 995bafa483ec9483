"""Private MariaDB and Redis servers that a fault test (or benchmarks/faults.py) may kill at will.

The shared servers on 3306/6379 are never touched: each server here has its own temporary data
folder and a free port near the default one (3317, 6391), and is killed at the end. Restarting
means SIGKILL (no clean shutdown, as in a crash) then a new process on the same port and data.

``ServerUnavailable`` is raised when the binaries are missing; the fixtures in conftest.py turn
it into a skip that says so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

MARIADBD_CANDIDATES = ("mariadbd", "/usr/sbin/mariadbd", "mysqld", "/usr/sbin/mysqld")
INSTALL_DB_CANDIDATES = ("mariadb-install-db", "mysql_install_db")


class ServerUnavailable(RuntimeError):
    """The server binaries are not installed, or the server did not start (the message says why)."""


def _which(candidates: tuple[str, ...]) -> str | None:
    for name in candidates:
        found = shutil.which(name) or (name if os.path.isabs(name) and os.access(name, os.X_OK) else None)
        if found:
            return found
    return None


def free_port(preferred: int) -> int:
    """``preferred`` if nothing listens there, else the next free one (several runs at once)."""
    for port in range(preferred, preferred + 200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise ServerUnavailable(f"no free port in {preferred}..{preferred + 199}")


def _wait(check, timeout: float, what: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerUnavailable(f"{what} exited ({process.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
        try:
            check()
            return
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = exc
            time.sleep(0.2)
    raise ServerUnavailable(f"{what} did not answer within {timeout} s ({last})")


class _Server:
    name = "server"

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.process: subprocess.Popen | None = None
        self.log = folder / f"{self.name}.log"
        self.starts = 0

    def command(self) -> list[str]:
        raise NotImplementedError

    def ping(self) -> None:
        raise NotImplementedError

    def start(self, timeout: float = 60) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.starts += 1
        _wait(self.ping, timeout, f"{self.name} on port {self.port}", self.process, self.log)

    def kill(self) -> None:
        """SIGKILL, as in a crash: nothing is flushed, clients see their connections drop."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        # The port must be free before a restart binds it again.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not self._port_free():
            time.sleep(0.1)

    def restart(self) -> None:
        self.kill()
        self.start()

    def _port_free(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) != 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class PrivateMariaDB(_Server):
    name = "mariadb"

    def __init__(self, folder: Path, port: int, binary: str) -> None:
        super().__init__(folder, port)
        self.binary, self.datadir = binary, folder / "data"

    def command(self) -> list[str]:
        return [
            self.binary,
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.folder / 'mysqld.sock'}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            "--user=root",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=32M",
            "--skip-log-bin",
            f"--pid-file={self.folder / 'mysqld.pid'}",
        ]

    def connect(self, database: str | None = None):
        import MySQLdb

        kwargs = {"db": database} if database else {}
        return MySQLdb.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=2, **kwargs)

    def ping(self) -> None:
        self.connect().close()

    def create_database(self, name: str) -> None:
        conn = self.connect()
        try:
            conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
        finally:
            conn.close()

    def url(self, database: str) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/{database}"


class PrivateRedis(_Server):
    name = "redis"

    def __init__(self, folder: Path, port: int, binary: str) -> None:
        super().__init__(folder, port)
        self.binary = binary

    def command(self) -> list[str]:
        # No persistence: a restart loses every queued message (the fault under test).
        return [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(self.folder),
        ]

    def client(self, db: int = 0):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_connect_timeout=2)

    def ping(self) -> None:
        self.client().ping()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


@contextlib.contextmanager
def private_mariadb(port: int = 3317) -> Iterator[PrivateMariaDB]:
    """A fresh MariaDB (root, no password, on 127.0.0.1) in a temporary folder, killed at the end."""
    binary, install = _which(MARIADBD_CANDIDATES), _which(INSTALL_DB_CANDIDATES)
    if not binary or not install:
        raise ServerUnavailable("mariadbd / mariadb-install-db are not installed (apt-get install mariadb-server)")
    try:
        import MySQLdb  # noqa: F401
    except ImportError as exc:
        raise ServerUnavailable("mysqlclient is not installed") from exc
    folder = Path(tempfile.mkdtemp(prefix="facesite-private-mariadb-"))
    server = PrivateMariaDB(folder, free_port(port), binary)
    try:
        init = subprocess.run(
            [
                install,
                "--no-defaults",
                f"--datadir={server.datadir}",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if init.returncode != 0:
            raise ServerUnavailable(f"mariadb-install-db failed: {init.stderr[-2000:]}")
        server.start()
        yield server
    finally:
        server.kill()
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def private_redis(port: int = 6391) -> Iterator[PrivateRedis]:
    """A Redis without persistence in a temporary folder, killed at the end."""
    binary = _which(("redis-server", "/usr/bin/redis-server"))
    if not binary:
        raise ServerUnavailable("redis-server is not installed (apt-get install redis-server)")
    try:
        import redis  # noqa: F401
    except ImportError as exc:
        raise ServerUnavailable("the redis package is not installed") from exc
    folder = Path(tempfile.mkdtemp(prefix="facesite-private-redis-"))
    server = PrivateRedis(folder, free_port(port), binary)
    try:
        server.start()
        yield server
    finally:
        server.kill()
        shutil.rmtree(folder, ignore_errors=True)
