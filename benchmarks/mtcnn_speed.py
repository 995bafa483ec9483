"""MTCNN speed, side by side: the mtcnn package vs the fast detector's backends.

    .venv/bin/python benchmarks/mtcnn_speed.py [--json bench-mtcnn.json] [--repeat 5]

Twenty sample photos from the shared folder (FACESITE_TEST_DATA), resized to 640 px on the
long side, go through every detector in turn (interleaved, so a busy machine slows them all
alike). Printed: median / p90 wall ms per photo, median CPU ms (this process, all threads:
steadier than wall time on a shared machine), faces found (all, and with score >= 0.9), and
whether each detector found the package's faces on every photo (same count with score >= 0.9,
matched boxes IoU >= 0.9, landmarks within 2 px). The same numbers go to the JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PHOTOS = [
    "samples/deepface/couple.jpg",
    "samples/deepface/selfie-many-people.jpg",
    "samples/face_recognition/examples/knn_examples/test/obama_and_biden.jpg",
    "samples/insightface/python-package/insightface/data/images/t1.jpg",
    "samples/face_recognition/examples/two_people.jpg",
    "samples/face_recognition/examples/obama-480p.jpg",
    "samples/face_recognition/examples/knn_examples/test/johnsnow_test1.jpg",
    "samples/face_recognition/examples/knn_examples/test/kit_with_rose.jpg",
    "samples/deepface/img2.jpg",
    "samples/deepface/img4.jpg",
    "samples/deepface/img11.jpg",
    "samples/insightface/cpp-package/inspireface/test_res/data/bulk/view.jpg",
    "samples/insightface/python-package/insightface/data/images/mask_blue.jpg",
    "samples/insightface/cpp-package/inspireface/test_res/data/bulk/woman.png",
    "lfw/lfw-deepfunneled/AJ_Cook/AJ_Cook_0001.jpg",
    "lfw/lfw-deepfunneled/Aaron_Eckhart/Aaron_Eckhart_0001.jpg",
    "lfw/lfw-deepfunneled/George_W_Bush/George_W_Bush_0001.jpg",
    "lfw/lfw-deepfunneled/Colin_Powell/Colin_Powell_0001.jpg",
    "lfw/lfw-deepfunneled/Serena_Williams/Serena_Williams_0001.jpg",
    "lfw/lfw-deepfunneled/Tony_Blair/Tony_Blair_0001.jpg",
]
KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


def data_dir() -> Path:
    return Path(os.environ.get("FACESITE_TEST_DATA", ROOT.parent / "shared" / "faces"))


def load_photo(path: Path, long_side: int) -> np.ndarray:
    with Image.open(path) as im:
        rgb = im.convert("RGB")
        scale = long_side / max(rgb.size)
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        return np.asarray(rgb.resize(size, Image.Resampling.BILINEAR))


def package_faces(result: list[dict]) -> list[tuple[tuple[float, ...], float, np.ndarray]]:
    return [
        (
            tuple(float(v) for v in f["box"]),
            float(f["confidence"]),
            np.array([f["keypoints"][k] for k in KEYPOINTS], np.float32),
        )
        for f in result
    ]


def fast_faces(result) -> list[tuple[tuple[float, ...], float, np.ndarray]]:
    return [(tuple(f.box), f.score, f.landmarks) for f in result]


def iou(a, b) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def same_faces(reference, found, min_score=0.9, min_iou=0.9, max_landmark_px=2.0) -> bool:
    ref = [f for f in reference if f[1] >= min_score]
    got = [f for f in found if f[1] >= min_score]
    if len(ref) != len(got):
        return False
    unused = list(got)
    for box, _, landmarks in ref:
        best = max(unused, key=lambda f: iou(box, f[0]), default=None)
        if best is None or iou(box, best[0]) < min_iou:
            return False
        if np.abs(best[2] - landmarks).max() > max_landmark_px:
            return False
        unused.remove(best)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", default="bench-mtcnn.json", help="where to write the results")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes over the photos")
    parser.add_argument("--size", type=int, default=640, help="long side of the photos, px")
    parser.add_argument("--threads", type=int, default=None, help="TFLite threads (default min(2, cpus))")
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["package", "tflite", "tf", "tflite-fast-pyramid"],
        help="detectors to leave out",
    )
    args = parser.parse_args()

    folder = data_dir()
    paths = [folder / p for p in PHOTOS if (folder / p).is_file()]
    if not paths:
        print(f"No sample photos under {folder}: set FACESITE_TEST_DATA.", file=sys.stderr)
        return 2
    photos = [load_photo(p, args.size) for p in paths]
    print(f"{len(photos)} photos at {args.size} px from {folder}")

    warnings.filterwarnings("ignore")
    from faceengine.mtcnn_fast import MTCNNDetector

    detectors = {}
    if "package" not in args.skip:
        from mtcnn import MTCNN

        package = MTCNN()
        detectors["package"] = lambda im: package_faces(package.detect_faces(im))
    variants: list[tuple[str, dict[str, Any]]] = [
        ("tflite", {"backend": "tflite"}),
        ("tf", {"backend": "tf"}),
        ("tflite-fast-pyramid", {"backend": "tflite", "fast_pyramid": True}),
    ]
    for name, kwargs in variants:
        if name not in args.skip:
            t0 = time.perf_counter()
            detector = MTCNNDetector(num_threads=args.threads, **kwargs)
            print(f"{name}: built in {time.perf_counter() - t0:.1f} s")
            detectors[name] = (lambda d: lambda im: fast_faces(d.detect(im)))(detector)

    # Warm-up pass (graph tracing, interpreter creation), which also gives the faces.
    found = {name: [detect(im) for im in photos] for name, detect in detectors.items()}
    times: dict[str, list[list[float]]] = {name: [[] for _ in photos] for name in detectors}
    cpu: dict[str, list[float]] = {name: [] for name in detectors}
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    for _ in range(args.repeat):
        for i, im in enumerate(photos):
            for name, detect in detectors.items():
                c0, t0 = time.process_time(), time.perf_counter()
                detect(im)
                times[name][i].append((time.perf_counter() - t0) * 1000)
                cpu[name].append((time.process_time() - c0) * 1000)

    results: dict[str, dict[str, Any]] = {}
    for name in detectors:
        per_photo = [statistics.median(t) for t in times[name]]
        flat = sorted(t for ts in times[name] for t in ts)
        faces = found[name]
        entry: dict[str, Any] = {
            "median_ms": round(statistics.median(per_photo), 2),
            "p90_ms": round(flat[int(0.9 * (len(flat) - 1))], 2),
            "mean_ms": round(statistics.fmean(per_photo), 2),
            # CPU time of this process, all threads (spin-waits included): less sensitive than
            # wall time to other processes on a shared machine.
            "median_cpu_ms": round(statistics.median(cpu[name]), 2),
            "faces": sum(len(f) for f in faces),
            "faces_score_ge_0_9": sum(1 for f in faces for face in f if face[1] >= 0.9),
            "per_photo_ms": [round(t, 2) for t in per_photo],
            "per_photo_faces": [len(f) for f in faces],
        }
        if "package" in found and name != "package":
            matches = [same_faces(ref, got) for ref, got in zip(found["package"], faces, strict=True)]
            entry["same_faces_as_package"] = all(matches)
            entry["photos_differing"] = [
                str(p.relative_to(folder)) for p, ok in zip(paths, matches, strict=True) if not ok
            ]
        results[name] = entry

    base = results.get("package", {}).get("median_ms")
    print(
        f"\n{'detector':22s} {'median ms':>10s} {'p90 ms':>8s} {'speed-up':>9s} {'cpu ms':>7s} "
        f"{'faces':>6s} {'>=0.9':>6s}  same faces"
    )
    for name, r in results.items():
        speedup = f"{base / r['median_ms']:.1f}x" if base else "-"
        same = {True: "yes", None: "-"}.get(
            r.get("same_faces_as_package"), "NO: " + ", ".join(r.get("photos_differing", []))
        )
        print(
            f"{name:22s} {r['median_ms']:10.1f} {r['p90_ms']:8.1f} {speedup:>9s} {r['median_cpu_ms']:7.1f} "
            f"{r['faces']:6d} {r['faces_score_ge_0_9']:6d}  {same}"
        )

    import tensorflow as tf

    report = {
        "photos": [str(p.relative_to(folder)) for p in paths],
        "long_side_px": args.size,
        "repeat": args.repeat,
        "threads": args.threads or min(2, os.cpu_count() or 1),
        "cpu_count": os.cpu_count(),
        # Other processes' load (1-min average) before and after the timed passes.
        "load_average": [load_before, os.getloadavg()[0]] if load_before is not None else None,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "results": results,
    }
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nWritten {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
