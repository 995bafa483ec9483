"""Load test: concurrent API clients recognising real photos against a local production-like stack.

The stack on 127.0.0.1: the site under gunicorn (gthread; ``manage.py runserver`` if gunicorn is
missing), Celery workers with the real engine (1, then 2: ``--workers``), MariaDB (database
``loadbench`` on the shared server, created and migrated) and a private Redis broker
(tests/faults/servers.py; ``--redis URL`` to use another). A user and an API token are created.

For ``--duration`` seconds, ``--clients`` threads each loop: POST a sample photo
(/work/shared/faces/samples, in a fixed order) to /api/v1/recognize, then poll its job URL until
it is finished (``--mode async``, the default), or POST with ``?wait=30`` and take the answer
(``--mode wait``). Latency is submit -> result as the client sees it. Jobs still running at the
end are waited for (and counted); photos/s = finished photos / (last result - start).

Rate limits are raised for the run (FACESITE_API_RATE, FACESITE_API_ENGINE_RATE): the test
measures the stack, not the throttle. Before each run every worker loads the model (warm-up).

    python benchmarks/load.py [--duration 60] [--clients 4] [--workers 1 2] [--mode async|wait]
        [--database-url mysql://root@127.0.0.1:3306/loadbench] [--json artifacts/load.json]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import median_ms, percentile_ms, print_table, sample_photos, write_json  # noqa: E402
from tests.faults.servers import free_port, private_redis  # noqa: E402
from tests.stack import CeleryWorker, WebServer, create_user, manage, request, stack_env  # noqa: E402

POLL_SECONDS = 0.1
JOB_TIMEOUT = 300.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=60, help="seconds of submitting, per worker count")
    parser.add_argument("--clients", type=int, default=4, help="concurrent API clients (threads)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Celery worker counts to measure")
    parser.add_argument(
        "--mode",
        choices=["async", "wait"],
        default="async",
        help="async: submit, then poll the job; wait: POST ?wait=30 and take the answer",
    )
    parser.add_argument("--tf-threads", type=int, default=1, help="FACESITE_TF_THREADS of each worker")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn processes")
    parser.add_argument("--web-threads", type=int, default=4, help="threads per gunicorn process")
    parser.add_argument(
        "--database-url",
        default="mysql://root@127.0.0.1:3306/loadbench",
        help="a MySQL/MariaDB database of its own (created and migrated)",
    )
    parser.add_argument("--redis", default="", help="broker URL (default: a private Redis started here)")
    parser.add_argument("--json", type=Path, default=ROOT / "artifacts" / "load.json", help="write the numbers here")
    return parser.parse_args()


@dataclass
class Tally:
    """What the clients saw; appended to from several threads under ``lock``."""

    latencies: list[float] = field(default_factory=list)
    done: int = 0
    failed_jobs: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    faces: int = 0
    last_result: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, kind: str) -> None:
        with self.lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1


def create_database(url: str) -> None:
    import dj_database_url
    import MySQLdb

    db = dj_database_url.parse(url)
    server = MySQLdb.connect(
        host=db["HOST"] or "127.0.0.1",
        port=int(db["PORT"] or 3306),
        user=db["USER"] or "root",
        passwd=db["PASSWORD"] or "",
    )
    server.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{db['NAME']}` CHARACTER SET utf8mb4")
    server.close()


def one_photo(base: str, token: str, path: Path, mode: str, tally: Tally) -> None:
    """Submit one photo and follow it to its result; everything is recorded in ``tally``."""
    started = time.monotonic()
    files = {"image": (path.name, path.read_bytes())}
    try:
        if mode == "wait":
            reply = request("POST", base + "/api/v1/recognize?wait=30", token=token, files=files, timeout=60)
        else:
            reply = request("POST", base + "/api/v1/recognize", token=token, files=files)
        if reply.status not in (200, 202):
            tally.error(f"submit HTTP {reply.status} {reply.json().get('error', {}).get('code', '')}".strip())
            return
        job = reply.json()
        while not job["finished"]:
            if time.monotonic() - started > JOB_TIMEOUT:
                tally.error("job timeout")
                return
            time.sleep(POLL_SECONDS)
            poll = request("GET", job["url"], token=token)
            if poll.status != 200:
                tally.error(f"poll HTTP {poll.status}")
                return
            job = poll.json()
    except OSError as exc:  # refused, reset, timed out
        tally.error(f"connection: {type(exc).__name__}")
        return
    finished = time.monotonic()
    with tally.lock:
        tally.latencies.append(finished - started)
        tally.last_result = max(tally.last_result, finished)
        if job["status"] == "done":
            tally.done += 1
            tally.faces += len(job["faces"])
        else:
            tally.failed_jobs += 1
            tally.errors[f"job {job['error']['code']}"] = tally.errors.get(f"job {job['error']['code']}", 0) + 1


def run_clients(base: str, token: str, photos: list[Path], clients: int, duration: float, mode: str) -> dict:
    tally = Tally()
    cycle = itertools.cycle(photos)
    cycle_lock = threading.Lock()
    started = time.monotonic()
    stop_at = started + duration

    def client() -> None:
        while time.monotonic() < stop_at:
            with cycle_lock:
                path = next(cycle)
            one_photo(base, token, path, mode, tally)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = (tally.last_result or time.monotonic()) - started
    finished = tally.done + tally.failed_jobs
    return {
        "photos": finished,
        "done": tally.done,
        "failed_jobs": tally.failed_jobs,
        "errors": sum(tally.errors.values()) - tally.failed_jobs,
        "error_kinds": tally.errors,
        "faces": tally.faces,
        "wall_s": round(wall, 2),
        "photos_per_s": round(finished / wall, 3) if wall > 0 else float("nan"),
        "latency_p50_ms": round(percentile_ms(tally.latencies, 50), 1),
        "latency_p95_ms": round(percentile_ms(tally.latencies, 95), 1),
        "latency_p99_ms": round(percentile_ms(tally.latencies, 99), 1),
        "latency_median_ms": round(median_ms(tally.latencies), 1),
    }


def warm_up(base: str, token: str, photo: Path, workers: int) -> None:
    """Every worker loads the model before the clock starts (prefetch 1: parallel jobs spread)."""
    tally = Tally()
    threads = [
        threading.Thread(target=one_photo, args=(base, token, photo, "async", tally)) for _ in range(2 * workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if tally.errors:
        raise SystemExit(f"the warm-up failed: {tally.errors}")


def main() -> None:
    args = parse_args()
    photos = sample_photos()
    folder = Path(tempfile.mkdtemp(prefix="facesite-load-"))
    media = folder / "media"
    media.mkdir()
    create_database(args.database_url)
    results = []
    with contextlib.ExitStack() as stack:
        broker_url = args.redis or stack.enter_context(private_redis()).url(0)
        env = stack_env(
            database_url=args.database_url,
            broker_url=broker_url,
            media_root=media,
            FACESITE_TF_THREADS=str(args.tf_threads),
            FACESITE_LOG_LEVEL="WARNING",
            FACESITE_API_RATE="1000000/min",
            FACESITE_API_ENGINE_RATE="1000000/min",
        )
        manage(env, "migrate", "--noinput")
        token, _ = create_user(env, "loadbench")
        web = WebServer(env, free_port(8751), folder / "web.log", workers=args.web_workers, threads=args.web_threads)
        stack.callback(web.stop)
        web.wait_ready()
        print(
            f"stack: {web.kind}, {len(photos)} sample photos, {args.clients} clients, {args.duration:.0f} s "
            f"per run, mode {args.mode}, {os.cpu_count()} CPUs",
            flush=True,
        )
        for count in args.workers:
            workers = [
                CeleryWorker({**env, "FACESITE_LOG_LEVEL": "INFO"}, folder / f"worker-{count}-{i}.log")
                for i in range(count)
            ]
            try:
                for worker in workers:
                    worker.wait_ready()
                warm_up(web.base, token, photos[0], count)
                row = {
                    "workers": count,
                    "clients": args.clients,
                    "mode": args.mode,
                    **run_clients(web.base, token, photos, args.clients, args.duration, args.mode),
                }
            finally:
                for worker in workers:
                    worker.stop()
            print(f"{count} worker(s): {row}", flush=True)
            results.append(row)
    shutil.rmtree(folder, ignore_errors=True)
    print()
    print_table(
        ["workers", "clients", "photos", "photos/s", "p50 ms", "p95 ms", "p99 ms", "failed jobs", "errors"],
        [
            [
                r["workers"],
                r["clients"],
                r["photos"],
                f"{r['photos_per_s']:.2f}",
                r["latency_p50_ms"],
                r["latency_p95_ms"],
                r["latency_p99_ms"],
                r["failed_jobs"],
                r["errors"],
            ]
            for r in results
        ],
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_json(
        args.json,
        {
            "runs": results,
            "server": web.kind,
            "duration_s": args.duration,
            "cpus": os.cpu_count(),
            "photos_available": len(photos),
        },
    )


if __name__ == "__main__":
    main()
