"""The gallery at scale, end to end: N templates in MariaDB, worker processes that search them,
enrolments and deletions through the services while they search.

1. Backends, in this process: every backend of ``faceengine.index`` built on the same gallery;
   bytes per member (the index as a snapshot stores it, over the members), single-query time,
   and recall@1 against exact search on probes made from real embeddings (LFW people with at
   least two photos: the template is the mean of all but the last photo, the probe the last).
2. The application: the gallery loaded into a fresh MariaDB database (bulk inserts): the real
   LFW templates above plus synthetic ones drawn from a Gaussian with the mean and covariance
   of the LFW embeddings; ``--workers`` worker processes (Django, ``members.selectors``, as a
   Celery worker searches) are started, answer the probes, and watch while this process enrols
   LFW people and deletes members through ``members.services``; each change's time from its
   commit to the first search on each worker that sees it is ``visible_after_s``. Then a
   snapshot is written and a new worker started from it (``worker_start_s`` both ways).

The LFW embeddings come from the identity cache (``var/cache/identities/vectors-*-mobilefacenet-*.npz``,
the rows in the order of ``faceengine.evaluation.identities.read_identity_folder``) and the
enrolled photos are embedded by the real engine. It writes a table and, with ``--json``, the
keys ``templates backend search_ms_p50 search_ms_p95 recall_at_1 visible_after_s_p95
worker_start_s rss_mb`` (and more).

    python benchmarks/gallery_scale.py --templates 100000 [--workers 2] [--changes 20]
        [--backends numpy ivf ivf_sq8] [--nprobe 256 384 512] [--json bench-gallery-scale.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import test_data_dir  # noqa: E402
from faceengine.index import GalleryIndex, IndexConfig, normalize_rows  # noqa: E402

MODEL, DIM = "mobilefacenet", 192
DATABASE = "facesite_bench_gallery"


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# ------------------------------------------------------------------------------- the data


def lfw_embeddings() -> tuple[np.ndarray, list[str], list[Path]]:
    from faceengine.evaluation.identities import read_identity_folder

    cached = sorted((ROOT / "var" / "cache" / "identities").glob(f"vectors-*-{MODEL}-*.npz"))
    if not cached:
        raise SystemExit("no cached LFW embeddings in var/cache/identities (run benchmarks/open_set.py once)")
    vectors = np.load(cached[0])["vectors"].astype(np.float32)
    photos = read_identity_folder(test_data_dir() / "lfw" / "lfw-deepfunneled")
    if len(photos) != len(vectors):
        raise SystemExit(f"{cached[0].name} has {len(vectors)} rows for {len(photos)} LFW photos")
    return vectors, [person for _, person in photos], [photo for photo, _ in photos]


def real_gallery(vectors: np.ndarray, people: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(templates, probes, names) of the LFW people with two photos or more."""
    rows: dict[str, list[int]] = {}
    for i, person in enumerate(people):
        rows.setdefault(person, []).append(i)
    names = [p for p, r in rows.items() if len(r) >= 2]
    templates = normalize_rows(np.stack([vectors[rows[p][:-1]].mean(axis=0) for p in names]))
    probes = normalize_rows(np.stack([vectors[rows[p][-1]] for p in names]))
    return templates, probes, names


def shaped(n: int, vectors: np.ndarray, rng: np.random.Generator, chunk: int = 100_000) -> np.ndarray:
    """Unit vectors from the Gaussian with the mean and covariance of real embeddings."""
    mean = vectors.mean(axis=0)
    eigvals, eigvecs = np.linalg.eigh(np.cov(vectors, rowvar=False))
    basis = (eigvecs * np.sqrt(np.maximum(eigvals, 0))).T.astype(np.float32)
    out = np.empty((n, vectors.shape[1]), np.float32)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        out[start:stop] = normalize_rows(mean + rng.standard_normal((stop - start, len(mean)), np.float32) @ basis)
    return out


def exact_top1(gallery: np.ndarray, probes: np.ndarray, block: int = 256) -> np.ndarray:
    out = []
    for start in range(0, len(probes), block):
        out.append(np.argmax(probes[start : start + block] @ gallery.T, axis=1))
    return np.concatenate(out)


# ------------------------------------------------------------------------------- phase 1


def backends_table(gallery: np.ndarray, probes: np.ndarray, args: argparse.Namespace) -> list[dict]:
    ids = np.arange(1, len(gallery) + 1)
    exact = ids[exact_top1(gallery, probes)]
    own = exact == ids[: len(probes)]  # probe i's own template is row i: exact search got it right
    rows = []
    for backend in args.backends:
        sweeps = args.nprobe if backend.startswith("ivf") else [None]
        started = time.perf_counter()
        config = IndexConfig(backend=backend, ivf_nprobe=max(args.nprobe))
        index = GalleryIndex("bench", DIM, ids.tolist(), gallery, ids=ids, config=config)
        build = time.perf_counter() - started
        _meta, arrays = index.export()
        stored = sum(a.nbytes for a in arrays.values())
        for nprobe in sweeps:
            if nprobe is not None:
                index._store._index.nprobe = nprobe  # type: ignore[attr-defined]
            times, found = [], []
            for probe in probes:
                t0 = time.perf_counter()
                found.append(index.search(probe[None], k=1)[0][0].label)
                times.append((time.perf_counter() - t0) * 1000)
            row = {
                "backend": backend if nprobe is None else f"{backend} nprobe={nprobe}",
                "templates": len(gallery),
                "build_s": round(build, 2),
                "bytes_per_member": round(stored / len(gallery), 1),
                "search_ms_p50": round(pct(times, 50), 3),
                "search_ms_p95": round(pct(times, 95), 3),
                "recall_at_1": round(float(np.mean(np.asarray(found) == exact)), 4),
                "recall_at_1_own": round(float(np.mean((np.asarray(found) == exact)[own])), 4),
            }
            rows.append(row)
            print("  " + "  ".join(f"{k}={v}" for k, v in row.items()), flush=True)
        del index, arrays
    return rows


# ------------------------------------------------------------------------------- phase 2


def django_env(database_url: str, media: Path, snapshots: Path, backend: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "facesite.settings.test",
        "DATABASE_URL": database_url,
        "FACESITE_MEDIA_ROOT": str(media),
        "FACESITE_GALLERY_SNAPSHOT_DIR": str(snapshots),
        "FACESITE_LOG_LEVEL": "WARNING",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONUNBUFFERED": "1",
    }
    if backend != "auto":
        env["FACESITE_INDEX_BACKEND"] = backend
    return env


def make_database(server: str) -> str:
    import MySQLdb  # the driver Django uses here

    host, port = server.rsplit(":", 1)
    connection = MySQLdb.connect(host=host, port=int(port), user="root")
    cursor = connection.cursor()
    cursor.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    cursor.execute(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4")
    connection.close()
    return f"mysql://root@{server}/{DATABASE}"


def bulk_load(templates: np.ndarray, chunk: int = 5000) -> list[int]:
    """Members and their templates in bulk inserts (no engine, no per-row transactions)."""
    from django.db import transaction

    from members.models import Member, Template, vector_to_bytes
    from members.services.gallery import bump_gallery_version

    ids: list[int] = []
    for start in range(0, len(templates), chunk):
        block = templates[start : start + chunk]
        with transaction.atomic():
            members = Member.objects.bulk_create([Member(display_name=f"m{start + i}") for i in range(len(block))])
            Template.objects.bulk_create(
                [
                    Template(member_id=m.pk, model_name=MODEL, dim=DIM, count=1, vector=vector_to_bytes(v))
                    for m, v in zip(members, block, strict=True)
                ]
            )
        ids.extend(m.pk for m in members)
        if start // chunk % 20 == 0:
            print(f"  loaded {start + len(block)} / {len(templates)}", flush=True)
    with transaction.atomic():
        bump_gallery_version()  # one "anything changed" entry for the bulk load
    return ids


class Worker:
    def __init__(self, env: dict[str, str]) -> None:
        self.started = time.time()
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def send(self, **ask: Any) -> None:
        assert self.process.stdin
        self.process.stdin.write(json.dumps(ask) + "\n")
        self.process.stdin.flush()

    def receive(self) -> dict:
        assert self.process.stdout
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"a worker died (exit {self.process.poll()})")
        return json.loads(line)

    def ask(self, **ask: Any) -> dict:
        self.send(**ask)
        return self.receive()

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def worker_main() -> None:
    """A worker process: one JSON request a line on stdin, one JSON answer a line."""
    import django

    django.setup()
    from members import selectors

    def search(vector: np.ndarray) -> tuple[Any, Any]:
        cached = selectors.gallery_cached(model_name=MODEL, dim=DIM)
        best = cached.index.search(vector[None], k=1)[0]
        return (best[0].label if best else None), cached

    for line in sys.stdin:
        ask = json.loads(line)
        if ask["op"] == "ready":
            _, cached = search(np.ones(DIM, np.float32))
            answer = {
                "t": time.time(),
                "rss_mb": rss_mb(),
                "source": cached.source,
                "vectors": len(cached.index),
                "backend": cached.index.backend,
            }
        elif ask["op"] == "probes":
            probes = np.load(ask["path"])
            labels, times, index_times = [], [], []
            for probe in probes:
                t0 = time.perf_counter()
                cached = selectors.gallery_cached(model_name=MODEL, dim=DIM)  # the log head read
                t1 = time.perf_counter()
                best = cached.index.search(probe[None], k=1)[0]
                t2 = time.perf_counter()
                times.append((t2 - t0) * 1000)
                index_times.append((t2 - t1) * 1000)
                labels.append(best[0].label if best else None)
            answer = {"labels": labels, "ms": times, "index_ms": index_times, "rss_mb": rss_mb()}
        elif ask["op"] == "watch":
            vector, member, present = np.asarray(ask["vector"], np.float32), ask["member"], ask["present"]
            deadline, searches = time.time() + ask["timeout"], 0
            seen = None
            while time.time() < deadline:
                label, _ = search(vector)
                searches += 1
                if (label == member) == present:
                    seen = time.time()
                    break
                time.sleep(0.005)  # a worker between requests, not a spinning one
            answer = {"seen_at": seen, "searches": searches}
        else:
            answer = {"error": f"unknown op {ask['op']}"}
        print(json.dumps(answer), flush=True)


def changes_while_searching(
    workers: list[Worker], lfw_vectors: np.ndarray, people: list[str], photos: list[Path], args: argparse.Namespace
) -> list[float]:
    """Enrol ``--changes`` LFW people with one photo and delete as many members, through the
    services, while every worker watches for the change; seconds from each commit to each
    worker's first search that shows it."""
    from members import services
    from members.models import Template

    counts: dict[str, int] = {}
    for person in people:
        counts[person] = counts.get(person, 0) + 1
    singles = [i for i, person in enumerate(people) if counts[person] == 1][: args.changes]
    delays: list[float] = []
    for i in singles:
        # Enrol: the probe is the photo's own cached embedding, so it must find the new member.
        vector = lfw_vectors[i]
        member_id = _change_and_watch(
            workers,
            vector,
            lambda photo=photos[i], name=people[i]: services.member_create(display_name=name, photos=[photo]).member.pk,
            present=True,
            delays=delays,
        )
        # Delete it again: the same probe must stop finding it.
        template = Template.objects.get(member_id=member_id, model_name=MODEL).as_array()

        def delete(member_id: int = member_id) -> int:
            services.member_delete(member=member_id)
            return member_id

        _change_and_watch(workers, template, delete, present=False, delays=delays, member_id=member_id)
    return delays


def _change_and_watch(
    workers: list[Worker],
    vector: np.ndarray,
    change: Any,
    *,
    present: bool,
    delays: list[float],
    member_id: int | None = None,
) -> int:
    if member_id is None:
        # The id the next member will get is not known before the commit: watch afterwards,
        # with the commit time taken here (the search that sees it is still timed from it).
        member_id = change()
        committed = time.time()
        for worker in workers:
            worker.send(op="watch", vector=vector.tolist(), member=member_id, present=present, timeout=30)
    else:
        for worker in workers:
            worker.send(op="watch", vector=vector.tolist(), member=member_id, present=not present, timeout=30)
        for worker in workers:
            worker.receive()  # each worker sees the member before it is deleted
        for worker in workers:
            worker.send(op="watch", vector=vector.tolist(), member=member_id, present=present, timeout=30)
        time.sleep(0.05)  # the watchers are searching when the change commits
        change()
        committed = time.time()
    for worker in workers:
        seen = worker.receive()["seen_at"]
        delays.append(float("inf") if seen is None else max(0.0, seen - committed))
    return member_id


def run(args: argparse.Namespace) -> dict:
    rng = np.random.default_rng(args.seed)
    lfw_vectors, people, photos = lfw_embeddings()
    real_templates, probes, _names = real_gallery(lfw_vectors, people)
    synthetic = shaped(args.templates - len(real_templates), lfw_vectors, rng)
    gallery = np.concatenate([real_templates, synthetic])
    print(f"{len(gallery)} templates ({len(real_templates)} real LFW people), {len(probes)} real probes", flush=True)

    print("backends (in this process):", flush=True)
    backends = backends_table(gallery, probes, args) if args.backends else []

    work = Path(tempfile.mkdtemp(prefix="gallery-scale-"))
    database_url = make_database(args.server)
    env = django_env(database_url, work / "media", work / "snapshots", args.backend)
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "FACESITE_MEDIA_ROOT")})
    os.environ["FACESITE_GALLERY_SNAPSHOT_DIR"] = env["FACESITE_GALLERY_SNAPSHOT_DIR"]
    if args.backend != "auto":
        os.environ["FACESITE_INDEX_BACKEND"] = args.backend
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    import django

    django.setup()
    started = time.perf_counter()
    member_ids = np.asarray(bulk_load(gallery))
    load_s = time.perf_counter() - started
    print(f"bulk load: {load_s:.1f} s", flush=True)
    np.save(work / "probes.npy", probes)
    exact = member_ids[exact_top1(gallery, probes)]

    start_db = []
    workers = []
    for _ in range(args.workers):
        worker = Worker(env)
        ready = worker.ask(op="ready")
        start_db.append(ready["t"] - worker.started)
        workers.append(worker)
    print(f"workers ready from the database in {[round(s, 1) for s in start_db]} s ({ready['backend']})", flush=True)
    answers = workers[0].ask(op="probes", path=str(work / "probes.npy"))
    agree = np.asarray(answers["labels"]) == exact
    recall = float(np.mean(agree))
    own = exact == member_ids[: len(probes)]  # the real templates were loaded first, in probe order
    search_ms = answers["ms"]

    delays = changes_while_searching(workers, lfw_vectors, people, photos, args)
    print(f"visible after (s): p50 {pct(delays, 50):.3f} p95 {pct(delays, 95):.3f} max {max(delays):.3f}", flush=True)
    rss = [w.ask(op="ready")["rss_mb"] for w in workers]
    for worker in workers:
        worker.close()

    from members.snapshots import snapshot_write

    written = snapshot_write(model_name=MODEL, dim=DIM, match="template")
    fresh = Worker(env)
    ready = fresh.ask(op="ready")
    start_snapshot = ready["t"] - fresh.started
    rss_snapshot = ready["rss_mb"]
    fresh.close()
    result = {
        "templates": len(gallery),
        "backend": ready["backend"],
        "search_ms_p50": round(pct(search_ms, 50), 3),
        "search_ms_p95": round(pct(search_ms, 95), 3),
        "index_search_ms_p50": round(pct(answers["index_ms"], 50), 3),
        "index_search_ms_p95": round(pct(answers["index_ms"], 95), 3),
        "recall_at_1": round(recall, 4),
        # Among the probes whose exact answer is their own person (the answers that matter).
        "recall_at_1_own": round(float(np.mean(agree[own])), 4),
        "visible_after_s_p50": round(pct(delays, 50), 3),
        "visible_after_s_p95": round(pct(delays, 95), 3),
        "visible_after_s_max": round(max(delays), 3),
        "changes": len(delays) // max(1, args.workers),
        "worker_start_s": {
            "database": round(max(start_db), 2),
            "snapshot": round(start_snapshot, 2),
            "snapshot_source": ready["source"],
        },
        "rss_mb": [round(r) for r in rss],  # the workers built from the database, after the changes
        "rss_mb_snapshot_worker": round(rss_snapshot),
        "workers": args.workers,
        "bulk_load_s": round(load_s, 1),
        "snapshot": {"write_s": written.seconds, "bytes": written.bytes},
        "probes": len(probes),
        "backends": backends,
        "cpus": os.cpu_count(),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--templates", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--changes", type=int, default=20, help="enrolments (each deleted again)")
    parser.add_argument("--backend", default="auto", help="the workers' FACESITE_INDEX_BACKEND")
    parser.add_argument("--backends", nargs="*", default=["numpy", "ivf", "ivf_sq8"], help="phase 1 backends")
    parser.add_argument("--nprobe", nargs="+", type=int, default=[256, 384, 512], help="phase 1 IVF nprobe sweep")
    parser.add_argument("--server", default="127.0.0.1:3306", help="MariaDB host:port (root, no password)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main()
        return
    result = run(args)
    print(json.dumps({k: v for k, v in result.items() if k != "backends"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
