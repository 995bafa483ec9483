"""Fault drill: the issue #7 faults, end to end, against a stack of subprocesses.

The stack: a private MariaDB and a private Redis (tests/faults/servers.py; the shared servers on
3306/6379 are never touched), the site under gunicorn (runserver if gunicorn is missing), Celery
workers with the real engine, and uploads under a small tmpfs. Photos go in through the API, as
a client would send them. Each fault is injected, then what happened is read from the API and
the database:

* worker killed mid-job   SIGKILL to a worker while it runs a job; a new worker finishes it, once;
* Redis restarted         jobs queued (and one uploaded while Redis is down), Redis killed and
                          started empty; the start-up requeue sweep sends them again; all done;
* MariaDB restarted       the API and pages answer 503 while it is down, then 200 with no restart
                          of the web server; a job uploaded after the restart is done;
* disk full               the tmpfs filled; an upload gets 507 storage_full, no row, no partial
                          file; after freeing space the same upload works.

    python benchmarks/faults.py [--json artifacts/faults.json] [--only worker redis mariadb disk]

Prints a table "fault | what happened | outcome" and writes the JSON.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import print_table, test_data_dir, write_json  # noqa: E402
from tests.faults.servers import ServerUnavailable, free_port, private_mariadb, private_redis  # noqa: E402
from tests.stack import CeleryWorker, WebServer, create_user, manage, request, stack_env  # noqa: E402

GROUP = "samples/face_recognition/examples/knn_examples/test/obama_and_biden.jpg"  # 3 faces
BIG = "samples/face_recognition/examples/obama-480p.jpg"  # 103 kB
SCENARIOS = ("worker", "redis", "mariadb", "disk")
DATABASE = "facesite_faults"
# Short timings so a drill takes minutes: unacked messages come back after 10 s, a claim is
# stale after 8 s (the jobs here take ~1 s).
FAST = {
    "CELERY_VISIBILITY_TIMEOUT": "10",
    "CELERY_UNACKED_RESTORE_INTERVAL": "2",
    "CELERY_UNACKED_RESTORE_THROTTLE": "1",
    "FACESITE_JOB_STALE_AFTER": "8",
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS), help="faults to inject")
    parser.add_argument("--json", type=Path, default=ROOT / "artifacts" / "faults.json", help="write the results here")
    parser.add_argument("--keep-logs", action="store_true", help="keep the logs folder (printed)")
    return parser.parse_args()


class Drill:
    """The stack and the helpers every scenario uses."""

    def __init__(self, mariadb, redis, folder: Path, media: Path, media_is_tmpfs: bool) -> None:
        self.mariadb, self.redis, self.folder, self.media = mariadb, redis, folder, media
        self.media_is_tmpfs = media_is_tmpfs
        self.env = stack_env(
            database_url=mariadb.url(DATABASE),
            broker_url=redis.url(0),
            media_root=media,
            FACESITE_TF_THREADS="1",
            FACESITE_API_RATE="100000/min",
            FACESITE_API_ENGINE_RATE="100000/min",
            **FAST,
        )
        self.workers: list[CeleryWorker] = []
        self.web: WebServer | None = None
        self.token = self.session = ""

    @property
    def server(self) -> WebServer:
        """The web server that setup() started."""
        if self.web is None:
            raise RuntimeError("The web server is not running: call setup() first.")
        return self.web

    def setup(self) -> None:
        self.mariadb.create_database(DATABASE)
        manage(self.env, "migrate", "--noinput")
        self.token, self.session = create_user(self.env, "drill")
        self.web = WebServer(self.env, free_port(8741), self.folder / "web.log", workers=2)
        self.web.wait_ready()

    def worker(self, name: str, **extra: str) -> CeleryWorker:
        worker = CeleryWorker({**self.env, **extra}, self.folder / f"worker-{name}.log")
        self.workers.append(worker)
        worker.wait_ready()
        return worker

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()

    def upload(self, relative: str = GROUP):
        photo = test_data_dir() / relative
        return request(
            "POST",
            self.server.base + "/api/v1/recognize",
            token=self.token,
            files={"image": (photo.name, photo.read_bytes())},
        )

    def job(self, job_id: int) -> dict:
        return request("GET", f"{self.server.base}/api/v1/jobs/{job_id}", token=self.token).json()

    def wait_finished(self, job_id: int, timeout: float = 240) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job["finished"]:
                return job
            time.sleep(0.5)
        raise TimeoutError(f"job {job_id} not finished after {timeout} s: {self.job(job_id)['status']}")

    def wait_status(self, job_id: int, status: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.job(job_id)["status"] != status:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} never became {status}")
            time.sleep(0.2)

    def sql(self, query: str) -> list[tuple]:
        conn = self.mariadb.connect(DATABASE)
        try:
            cursor = conn.cursor()
            cursor.execute(query)
            return list(cursor.fetchall())
        finally:
            conn.close()

    def files(self) -> list[Path]:
        return sorted(p for p in self.media.rglob("*") if p.is_file())

    def close(self) -> None:
        self.stop_workers()
        if self.web:
            self.web.stop()


def scenario_worker(drill: Drill) -> tuple[str, bool]:
    first = drill.worker("killed", FACESITE_JOB_TEST_DELAY="60")  # test hook: the job stays "running"
    reply = drill.upload()
    job_id = reply.json()["id"]
    drill.wait_status(job_id, "running")
    first.kill()
    second = drill.worker("replacement")
    job = drill.wait_finished(job_id)
    time.sleep(4)  # one more restore sweep: nothing may run it again
    again = drill.job(job_id)
    done_runs = (first.text() + second.text()).count("'state': 'done'")
    drill.stop_workers()
    ok = (
        job["status"] == "done"
        and len(job["faces"]) == 3
        and job["attempts"] == 2
        and done_runs == 1
        and again["finished_at"] == job["finished_at"]
    )
    return (
        f"job {job_id} claimed, worker SIGKILLed mid-job; replacement worker re-claimed it "
        f"(attempt {job['attempts']}): {job['status']}, {len(job['faces'])} faces, ran to the end "
        f"{done_runs} time(s), result unchanged after another restore sweep"
    ), ok


def scenario_redis(drill: Drill) -> tuple[str, bool]:
    ids = [drill.upload().json()["id"] for _ in range(3)]  # no worker: they wait on Redis
    queued_before = drill.redis.client(0).llen("recognition")
    drill.redis.kill()
    started = time.monotonic()
    during = drill.upload()  # the broker is down: the upload is kept and answered 202
    upload_s = time.monotonic() - started
    if during.status == 202:
        ids.append(during.json()["id"])
    drill.redis.start()  # empty: every message is gone
    queued_after = drill.redis.client(0).llen("recognition")
    worker = drill.worker("after-redis", FACESITE_JOB_REQUEUE_AFTER="0")
    jobs = [drill.wait_finished(job_id) for job_id in ids]
    done = sum(job["status"] == "done" for job in jobs)
    requeued = worker.text().count("re-sent: its message looked lost")
    drill.stop_workers()
    ok = (
        during.status == 202
        and queued_after == 0
        and done == len(ids) == 4
        and all(job["attempts"] == 1 for job in jobs)
    )
    return (
        f"{queued_before} jobs queued, Redis SIGKILLed; an upload while it was down got {during.status} "
        f"in {upload_s:.1f} s; Redis restarted empty ({queued_after} messages left); the worker's "
        f"start-up sweep re-sent {requeued}; {done}/{len(ids)} done, each run once"
    ), ok


def scenario_mariadb(drill: Drill) -> tuple[str, bool]:
    worker = drill.worker("around-mariadb")
    api, page = drill.server.base + "/api/v1/jobs/999999", drill.server.base + "/jobs/"
    before = request("GET", api, token=drill.token).status
    pid = drill.server.pid
    drill.mariadb.kill()
    down_api = [request("GET", api, token=drill.token) for _ in range(3)]
    down_post = drill.upload()
    down_page = request("GET", page, session=drill.session)
    codes = {reply.json()["error"]["code"] for reply in [*down_api, down_post] if reply.status == 503}
    drill.mariadb.start()
    after_api = request("GET", api, token=drill.token).status
    after_page = request("GET", page, session=drill.session).status
    reply = drill.upload()
    job = drill.wait_finished(reply.json()["id"]) if reply.status == 202 else {"status": f"HTTP {reply.status}"}
    worker_survived = worker.alive()
    drill.stop_workers()
    statuses = [r.status for r in down_api]
    ok = (
        before == 404
        and statuses == [503] * 3
        and down_post.status == 503
        and down_page.status == 503
        and codes == {"database_unavailable"}
        and "Retry-After" in down_api[0].headers
        and after_api == 404
        and after_page == 200
        and job["status"] == "done"
        and drill.server.pid == pid
        and drill.server.alive()
        and worker_survived
    )
    return (
        f"MariaDB SIGKILLed: API GET {statuses}, upload {down_post.status}, page {down_page.status} "
        f"({', '.join(sorted(codes))}, Retry-After {down_api[0].headers.get('Retry-After')}); restarted: "
        f"first API call {after_api} (job 999999 does not exist), page {after_page}, new upload "
        f"{job['status']} by the same worker, web server never restarted"
    ), ok


def _fill(root: Path, leave: int) -> Path:
    ballast = root / "ballast"
    with open(ballast, "wb") as handle:
        try:
            while True:
                stat = os.statvfs(root)
                free = stat.f_bavail * stat.f_frsize
                if free <= leave:
                    break
                handle.write(b"\0" * min(64 * 1024, free - leave))
                handle.flush()
        except OSError:
            pass
    return ballast


def scenario_disk(drill: Drill) -> tuple[str, bool]:
    if not drill.media_is_tmpfs:
        return "skipped: could not mount a tmpfs for the uploads (needs root)", True
    drill.worker("disk")
    rows_before = drill.sql("SELECT COUNT(*) FROM recognition_recognitionjob")[0][0]
    files_before = drill.files()
    ballast = _fill(drill.media, leave=32 * 1024)
    full = drill.upload(BIG)
    rows_after = drill.sql("SELECT COUNT(*) FROM recognition_recognitionjob")[0][0]
    files_after = drill.files()
    ballast.unlink()
    retry = drill.upload(BIG)
    job = drill.wait_finished(retry.json()["id"]) if retry.status == 202 else {"status": f"HTTP {retry.status}"}
    drill.stop_workers()
    code = full.json()["error"]["code"] if full.status >= 400 else ""
    ok = (
        full.status == 507
        and code == "storage_full"
        and rows_after == rows_before
        and files_after == sorted([*files_before, ballast])
        and retry.status == 202
        and job["status"] == "done"
    )
    return (
        f"uploads folder filled to 32 kB free; a 103 kB photo got {full.status} {code}, rows "
        f"{rows_before}->{rows_after}, no partial file ({len(files_after) - len(files_before) - 1} new); "
        f"space freed: the same upload got {retry.status} and was {job['status']}"
    ), ok


def mount_tmpfs(path: Path, size: str) -> bool:
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


def main() -> None:
    args = parse_args()
    folder = Path(tempfile.mkdtemp(prefix="facesite-faults-"))
    media = folder / "media"
    media.mkdir()
    mounted = mount_tmpfs(media, "16m")
    rows, results = [], []
    try:
        with private_mariadb() as mariadb, private_redis() as redis:
            drill = Drill(mariadb, redis, folder, media, mounted)
            try:
                drill.setup()
                print(
                    f"stack: {drill.server.kind}, MariaDB :{mariadb.port}, Redis :{redis.port}, media {media} "
                    f"({'tmpfs 16 MB' if mounted else 'plain folder'}), logs {folder}",
                    flush=True,
                )
                for name in args.only:
                    started = time.monotonic()
                    try:
                        what, ok = globals()[f"scenario_{name}"](drill)
                    except Exception as exc:  # noqa: BLE001 - a drill reports, it does not stop
                        drill.stop_workers()
                        what, ok = f"error: {exc!r}", False
                        traceback.print_exc()
                    seconds = time.monotonic() - started
                    print(f"{name}: {'PASS' if ok else 'FAIL'} in {seconds:.0f} s: {what}", flush=True)
                    results.append(
                        {
                            "fault": name,
                            "what_happened": what,
                            "outcome": "pass" if ok else "fail",
                            "seconds": round(seconds, 1),
                        }
                    )
                    rows.append([name, what, "pass" if ok else "FAIL"])
            finally:
                drill.close()
    except ServerUnavailable as exc:
        raise SystemExit(f"cannot run the drill: {exc}") from None
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(media)], capture_output=True)
        if not args.keep_logs:
            shutil.rmtree(folder, ignore_errors=True)
    print()
    print_table(["fault", "what happened", "outcome"], rows)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.json, {"faults": results, "all_passed": all(r["outcome"] == "pass" for r in results)})
    if not all(r["outcome"] == "pass" for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
