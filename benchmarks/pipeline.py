"""Pipeline benchmark: photos per second through real Celery workers, and upload-to-result time.

The whole production path: ``job_create`` (content check, file stored, row committed, task sent
to Redis) -> ``celery -A facesite worker -Q recognition -c 1`` processes (model loaded once each)
-> ``job_run`` (claim, decode, detect, embed, match, result row). For 1 and 2 workers:

* burst: all photos uploaded at once; photos/s = photos / (last result - first upload), and the
  upload-to-result time of each (``finished_at - created_at`` from the database, so polling adds
  nothing), queueing included;
* one at a time (1 worker only): the next photo is uploaded once the previous one is done, the
  upload-to-result time of an idle system.

Needs MySQL/MariaDB and Redis; uses its own database (created and migrated) and Redis db number.

    python benchmarks/pipeline.py [--photos 50] [--workers 1 2] [--tf-threads 1]
        [--database-url mysql://root@127.0.0.1:3306/facesite_bench] [--redis redis://127.0.0.1:6379/6]
        [--json bench-pipeline.json]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.common import median_ms, percentile_ms, print_table, sample_photos, write_json  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=50, help="how many sample photos (sorted paths)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to measure")
    parser.add_argument("--tf-threads", type=int, default=1, help="FACESITE_TF_THREADS of each worker")
    parser.add_argument(
        "--database-url",
        default="mysql://root@127.0.0.1:3306/facesite_bench",
        help="a MySQL/MariaDB database of its own (created and migrated)",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/6", help="a Redis db of its own (flushed)")
    parser.add_argument("--no-sequential", action="store_true", help="skip the one-at-a-time run")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for a run")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    return parser.parse_args()


def setup_django(args: argparse.Namespace, media: Path) -> None:
    import dj_database_url

    db = dj_database_url.parse(args.database_url)
    import MySQLdb

    server = MySQLdb.connect(
        host=db["HOST"] or "127.0.0.1",
        port=int(db["PORT"] or 3306),
        user=db["USER"] or "root",
        passwd=db["PASSWORD"] or "",
    )
    server.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{db['NAME']}` CHARACTER SET utf8mb4")
    server.close()
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "facesite.settings.dev",
            "DATABASE_URL": args.database_url,
            "CELERY_BROKER_URL": args.redis,
            "FACESITE_MEDIA_ROOT": str(media),
            "FACESITE_LOG_LEVEL": "WARNING",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def start_workers(count: int, args: argparse.Namespace, logs: Path) -> list[subprocess.Popen]:
    env = {**os.environ, "FACESITE_TF_THREADS": str(args.tf_threads), "FACESITE_LOG_LEVEL": "INFO"}
    workers = []
    for index in range(count):
        log = open(logs / f"worker-{count}-{index}.log", "wb")  # noqa: SIM115 - the worker process writes to it
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "facesite",
                    "worker",
                    "-Q",
                    "recognition",
                    "-c",
                    "1",
                    "--pool",
                    "prefork",
                    "-n",
                    f"bench{index}-{uuid.uuid4().hex[:6]}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-l",
                    "INFO",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    deadline = time.monotonic() + 120
    for index in range(count):
        path = logs / f"worker-{count}-{index}.log"
        while b"ready." not in path.read_bytes():
            if time.monotonic() > deadline or workers[index].poll() is not None:
                raise SystemExit(f"worker {index} did not start:\n{path.read_text()[-3000:]}")
            time.sleep(0.2)
    return workers


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)


def wait_done(ids: list[int], timeout: float) -> list:
    from recognition.models import RecognitionJob

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = list(RecognitionJob.objects.filter(pk__in=ids))
        if all(job.is_finished for job in jobs) and len(jobs) == len(ids):
            return jobs
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {len(ids)} jobs")


def upload(path: Path):
    from recognition.services import job_create

    with open(path, "rb") as handle:
        return job_create(user=None, upload=handle)


def summarise(label: str, jobs: list, wall: float) -> dict:
    latencies = [(job.finished_at - job.created_at).total_seconds() for job in jobs]
    done = [job for job in jobs if job.status == "done"]
    engine = [job.timings.get("engine", 0.0) for job in done]
    return {
        "run": label,
        "photos": len(jobs),
        "done": len(done),
        "failed": len(jobs) - len(done),
        "faces": sum(len(job.result["faces"]) for job in done),
        "photos_per_s": len(jobs) / wall if wall else float("nan"),
        "wall_s": wall,
        "latency_median_ms": median_ms(latencies),
        "latency_p95_ms": percentile_ms(latencies, 95),
        "engine_median_ms": median_ms(engine),
        "workers_used": len({job.worker for job in jobs}),
    }


def main() -> None:
    args = parse_args()
    photos = sample_photos(args.photos)
    media = Path(tempfile.mkdtemp(prefix="facesite-bench-media-"))
    logs = Path(tempfile.mkdtemp(prefix="facesite-bench-logs-"))
    setup_django(args, media)
    import redis

    from recognition.models import RecognitionJob

    broker = redis.Redis.from_url(args.redis)
    results = []
    for count in args.workers:
        broker.flushdb()
        RecognitionJob.objects.all().delete()
        workers = start_workers(count, args, logs)
        try:
            # Warm-up: one photo per worker, so every worker has loaded the model.
            warm = wait_done([upload(photos[0]).pk for _ in range(2 * count)], args.timeout)
            model_load = max(job.timings.get("model", 0.0) for job in warm)
            RecognitionJob.objects.all().delete()
            start = time.time()
            ids = [upload(path).pk for path in photos]
            jobs = wait_done(ids, args.timeout)
            wall = max(job.finished_at.timestamp() for job in jobs) - start
            row = summarise(f"burst, {count} worker(s)", jobs, wall)
            row["model_load_s"] = model_load
            results.append(row)
            if count == 1 and not args.no_sequential:
                RecognitionJob.objects.all().delete()
                sequential = []
                start = time.time()
                for path in photos:
                    sequential += wait_done([upload(path).pk], args.timeout)
                results.append(summarise("one at a time, 1 worker", sequential, time.time() - start))
        finally:
            stop_workers(workers)
    broker.flushdb()
    RecognitionJob.objects.all().delete()
    print(
        f"\n{len(photos)} sample photos, {args.tf_threads} TensorFlow thread(s) per worker, "
        f"{os.cpu_count()} CPU(s) on this machine\n"
    )
    print_table(
        [
            "run",
            "photos/s",
            "upload->result median ms",
            "p95 ms",
            "engine median ms",
            "faces",
            "failed",
            "workers used",
        ],
        [
            [
                r["run"],
                r["photos_per_s"],
                r["latency_median_ms"],
                r["latency_p95_ms"],
                r["engine_median_ms"],
                r["faces"],
                r["failed"],
                r["workers_used"],
            ]
            for r in results
        ],
    )
    if args.json:
        write_json(
            args.json,
            {"photos": len(photos), "tf_threads": args.tf_threads, "cpus": os.cpu_count(), "results": results},
        )


if __name__ == "__main__":
    main()
