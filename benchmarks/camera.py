"""The camera path and video processing, measured against a local server with the real engine.

A local stack on 127.0.0.1: the site under gunicorn (gthread; ``manage.py runserver`` without
gunicorn), a SQLite database in a temporary folder (migrated; two LFW people enrolled), no
broker, so a video job runs eagerly inside its upload request, as in the embedded default.

Camera: ``--clients`` (1, then 4) threads, each its own stream on its own keep-alive
connection, post 640x480 JPEG frames (an enrolled member and a stranger side by side, drifting
a few px a frame) to POST /api/v1/camera/frame back to back, one in flight each: the most the
path sustains. Reported: frames/s in all, the median and 90th percentile round trip, and the
share of faces the tracker had embedded (the rest reused their track's embedding).

Video: a 640x480 mp4 (``--video-seconds``, people coming and going) is posted to
/api/v1/videos; the speed is video seconds per wall second of the job's own run (decode,
detect, track, embed, store), at FACESITE_VIDEO_SAMPLE_FPS (5).

The camera's rate limit is raised for the run (FACESITE_CAMERA_RATE): it measures the path,
not the throttle.

    python benchmarks/camera.py [--duration 20] [--clients 1 4] [--video-seconds 30]
        [--web-workers 1] [--web-threads 4] [--json artifacts/camera.json]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import percentile_ms, print_table, test_data_dir, write_json  # noqa: E402
from tests.faults.servers import free_port  # noqa: E402
from tests.stack import WebServer, create_user, manage, request, stack_env  # noqa: E402

MEMBERS = {"Colin_Powell": "Colin Powell", "Tony_Blair": "Tony Blair"}
STRANGERS = ["Gerhard_Schroeder", "Jean_Chretien"]
SIZE = (640, 480)

_ENROL = """
from pathlib import Path
from members.services import member_create
lfw = Path({lfw!r})
for folder, name in {members!r}.items():
    member_create(display_name=name, photos=sorted((lfw / folder).glob("*.jpg"))[:5])
print("ENROLLED")
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=20, help="seconds of frames per client count")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4], help="concurrent camera clients")
    parser.add_argument("--video-seconds", type=float, default=30, help="length of the benchmark video")
    parser.add_argument("--web-workers", type=int, default=1, help="gunicorn processes")
    parser.add_argument("--web-threads", type=int, default=4, help="threads per gunicorn process")
    parser.add_argument("--tf-threads", type=int, default=0, help="FACESITE_TF_THREADS of the web process")
    parser.add_argument("--json", type=Path, default=ROOT / "artifacts" / "camera.json")
    return parser.parse_args()


def lfw_photo(folder: str, index: int) -> np.ndarray:
    path = sorted((test_data_dir() / "lfw" / "lfw-deepfunneled" / folder).glob("*.jpg"))[index]
    image = cv2.imread(str(path))  # BGR, as cv2 writes
    if image is None:
        raise SystemExit(f"{path} cannot be read")
    return np.asarray(image)


def scene(people: list[tuple[np.ndarray, int]]) -> np.ndarray:
    frame = np.full((SIZE[1], SIZE[0], 3), 80, np.uint8)
    for photo, x in people:
        h, w = photo.shape[:2]
        frame[115 : 115 + h, x : x + w] = photo
    return frame


def camera_frames(count: int = 30) -> list[bytes]:
    member, stranger = lfw_photo("Colin_Powell", 8), lfw_photo(STRANGERS[0], 0)
    frames = []
    for i in range(count):
        drift = int(10 * np.sin(i / 5))  # a little movement, as a person at a desk
        image = scene([(member, 40 + drift), (stranger, 350 - drift)])
        frames.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    return frames


def write_video(path: Path, seconds: float, fps: int = 25) -> Path:
    """People coming and going: a member, both members, a member and a stranger, nobody..."""
    a, b, s = lfw_photo("Colin_Powell", 8), lfw_photo("Tony_Blair", 8), lfw_photo(STRANGERS[1], 0)
    scenes = [[(a, 40)], [(a, 40), (b, 350)], [(b, 350), (s, 40)], [], [(s, 195)]]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, SIZE)
    total = round(seconds * fps)
    for i in range(total):
        writer.write(scene(scenes[(i * len(scenes)) // total]))
    writer.release()
    return path


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    ]
    for name, (filename, content) in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def post_frame(connection: http.client.HTTPConnection, token: str, stream: str, frame: bytes) -> tuple[int, dict]:
    body, content_type = multipart({"stream": stream}, {"frame": ("frame.jpg", frame)})
    connection.request(
        "POST",
        "/api/v1/camera/frame",
        body=body,
        headers={"Content-Type": content_type, "Authorization": f"Token {token}", "Accept": "application/json"},
    )
    response = connection.getresponse()
    data = response.read()
    return response.status, json.loads(data) if data else {}


def camera_client(port: int, token: str, frames: list[bytes], deadline: float, out: dict) -> None:
    """One camera: its own stream and keep-alive connection, one frame in flight."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    stream = "bench-" + uuid.uuid4().hex[:12]
    rtts, faces, embedded, errors = [], 0, 0, 0
    for frame in itertools.cycle(frames):
        if time.perf_counter() >= deadline:
            break
        started = time.perf_counter()
        status, answer = post_frame(connection, token, stream, frame)
        rtts.append(time.perf_counter() - started)
        if status != 200:
            errors += 1
            continue
        faces += len(answer["faces"])
        embedded += sum(1 for f in answer["faces"] if f["embedded"])
    connection.close()
    out.update(rtts=rtts, faces=faces, embedded=embedded, errors=errors)


def warm_up(port: int, token: str, frame: bytes, count: int) -> None:
    """The engine loads in each web process at its first frame: send a few, on fresh connections."""
    for i in range(count):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        status, answer = post_frame(connection, token, f"warm-{i}", frame)
        connection.close()
        if status != 200:
            raise SystemExit(f"the camera endpoint answered {status}: {answer}")


def run_camera(port: int, token: str, clients: int, duration: float, frames: list[bytes]) -> dict:
    results: list[dict] = [{} for _ in range(clients)]
    start = time.perf_counter()
    deadline = start + duration
    threads = [
        threading.Thread(target=camera_client, args=(port, token, frames, deadline, results[i])) for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    rtts = [r for result in results for r in result["rtts"]]
    faces = sum(r["faces"] for r in results)
    return {
        "clients": clients,
        "frames": len(rtts),
        "errors": sum(r["errors"] for r in results),
        "seconds": round(elapsed, 2),
        "frames_per_s": round(len(rtts) / elapsed, 2),
        "frames_per_s_per_client": round(len(rtts) / elapsed / clients, 2),
        "median_ms": round(1000 * statistics.median(rtts), 1),
        "p90_ms": round(percentile_ms(rtts, 90), 1),
        "embedded_share": round(sum(r["embedded"] for r in results) / faces, 3) if faces else None,
    }


def stage_costs(frame: bytes, repeats: int = 20) -> dict:
    """In this process, after the server has stopped: what one 640x480 frame costs to detect
    and what one face costs to embed, the two parts tracking trades (the server re-embeds only
    the faces that need it)."""
    import faceengine
    from benchmarks.common import median_ms, model_dir

    recognizer = faceengine.load(model_dir())
    rgb = recognizer.load(frame)
    faces = recognizer.detector.detect(rgb)
    recognizer.embed_faces(rgb, faces)  # warm-up
    detect, embed = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        recognizer.detector.detect(rgb)
        detect.append(time.perf_counter() - started)
        started = time.perf_counter()
        recognizer.embed_faces(rgb, faces)
        embed.append((time.perf_counter() - started) / max(1, len(faces)))
    return {
        "faces": len(faces),
        "detect_ms": round(median_ms(detect), 1),
        "embed_ms_per_face": round(median_ms(embed), 1),
    }


def main() -> None:
    args = parse_args()
    if not (test_data_dir() / "lfw" / "lfw-deepfunneled").is_dir():
        raise SystemExit(f"LFW not found under {test_data_dir()}: set FACESITE_TEST_DATA")
    work = Path(tempfile.mkdtemp(prefix="camera-bench-"))
    env = stack_env(
        database_url=f"sqlite:///{work / 'bench.sqlite3'}",
        media_root=work / "media",
        FACESITE_CAMERA_RATE="1000000/min",
        FACESITE_API_ENGINE_RATE="1000000/min",
        FACESITE_TF_THREADS=str(args.tf_threads),
    )
    (work / "media").mkdir()
    manage(env, "migrate", "--noinput")
    lfw = str(test_data_dir() / "lfw" / "lfw-deepfunneled")
    assert "ENROLLED" in manage(env, "shell", "-c", _ENROL.format(lfw=lfw, members=MEMBERS))
    token, _session = create_user(env, "bench")
    port = free_port(8791)
    server = WebServer(env, port, work / "web.log", workers=args.web_workers, threads=args.web_threads)
    try:
        server.wait_ready()
        frames = camera_frames()
        warm_up(port, token, frames[0], 4 * args.web_workers)
        rows = [run_camera(port, token, n, args.duration, frames) for n in args.clients]

        video = write_video(work / "bench.mp4", args.video_seconds)
        started = time.perf_counter()
        reply = request(
            "POST",
            f"http://127.0.0.1:{port}/api/v1/videos",
            token=token,
            files={"video": ("bench.mp4", video.read_bytes())},
            timeout=600,
        )
        wall = time.perf_counter() - started
        body = reply.json()
        if reply.status != 202 or body.get("status") != "done":
            raise SystemExit(f"the video job did not finish: {reply.status} {body}")
        run_s = float(body["timings"]["run"])
        video_row = {
            "video_seconds": body["duration_s"],
            "size": f"{SIZE[0]}x{SIZE[1]}",
            "sample_fps": body["sample_fps"],
            "frames_looked_at": body["frames_processed"],
            "run_s": run_s,
            "upload_and_run_s": round(wall, 2),
            "video_s_per_wall_s": round(body["duration_s"] / run_s, 2),
            "appearances": [(a["member"], a["start_s"], a["end_s"]) for a in body["appearances"]],
            "unknown_tracks": len(body["unknown_tracks"]),
        }
    finally:
        server.stop()
    print(f"\nCamera: POST /api/v1/camera/frame, {server.kind}, 640x480 JPEG, one frame in flight per client")
    print_table(
        [
            "clients",
            "frames/s (all)",
            "frames/s per client",
            "median round trip ms",
            "p90 ms",
            "faces embedded",
            "errors",
        ],
        [
            [
                r["clients"],
                r["frames_per_s"],
                r["frames_per_s_per_client"],
                r["median_ms"],
                r["p90_ms"],
                f"{100 * (r['embedded_share'] or 0):.0f}%",
                r["errors"],
            ]
            for r in rows
        ],
    )
    print(f"\nVideo: {video_row['size']}, {video_row['video_seconds']} s, sampled at {video_row['sample_fps']}/s")
    print_table(
        ["video s", "frames looked at", "job run s", "video s per wall s", "appearances", "unknown tracks"],
        [
            [
                video_row["video_seconds"],
                video_row["frames_looked_at"],
                video_row["run_s"],
                video_row["video_s_per_wall_s"],
                len(video_row["appearances"]),
                video_row["unknown_tracks"],
            ]
        ],
    )
    costs = stage_costs(frames[0])
    share = next((r["embedded_share"] for r in rows if r["clients"] == 1), None) or 0.0
    every = costs["detect_ms"] + costs["faces"] * costs["embed_ms_per_face"]
    tracked = costs["detect_ms"] + share * costs["faces"] * costs["embed_ms_per_face"]
    costs.update(engine_ms_every_frame_embedded=round(every, 1), engine_ms_tracked=round(tracked, 1))
    print(f"\nEngine per frame ({costs['faces']} faces, this process)")
    print_table(
        ["detect ms", "embed ms per face", "all faces embedded ms", f"tracked ({100 * share:.0f}% embedded) ms"],
        [
            [
                costs["detect_ms"],
                costs["embed_ms_per_face"],
                costs["engine_ms_every_frame_embedded"],
                costs["engine_ms_tracked"],
            ]
        ],
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_json(
        args.json,
        {
            "server": server.kind,
            "cpus": os.cpu_count(),
            "duration_s": args.duration,
            "camera": rows,
            "video": video_row,
            "engine_per_frame": costs,
        },
    )


if __name__ == "__main__":
    main()
