"""Engine benchmark: detection, alignment and embedding time per photo and per face.

Runs each system in its own child process (so each one's peak memory is its own), one after the
other in the same run, on the sample photos resized to 640 px on the long side:

  facesite          our MTCNN (package weights on TFLite) + ArcFace alignment + the default model,
                    with the default detector settings (DetectorConfig())
  facesite-all-levels  the same with every level of the package's pyramid (skip_finest_levels=0):
                    faces down to 20 px, box for box the package's, at the cost of P-Net on the
                    two biggest levels
  facesite-tf       the default detector as tf.function graphs (what a GPU worker runs)
  mtcnn-package     PyPI mtcnn 1.0.0's own detect_faces + the same alignment and model
  face_recognition  dlib HOG detector + dlib ResNet embeddings (requirements-bench.txt), if installed

    python benchmarks/engine.py [--limit 20] [--size 640] [--repeat 3] [--json bench-engine.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from benchmarks.common import (
    median_ms,
    model_dir,
    peak_rss_mb,
    print_table,
    resize_long_side,
    sample_photos,
    write_json,
)

SYSTEMS = ("facesite", "facesite-all-levels", "facesite-tf", "mtcnn-package", "face_recognition")


def _load_photos(limit: int, size: int) -> list[tuple[str, np.ndarray]]:
    from faceengine.images import load_image

    return [(str(p), resize_long_side(load_image(p), size)) for p in sample_photos(limit)]


class FacesitePipeline:
    def __init__(self, backend: str, package_detector: bool = False, skip_finest_levels: int | None = None) -> None:
        import faceengine
        from faceengine.align import align_face
        from faceengine.detection import DetectorConfig

        self.align = align_face
        config = DetectorConfig(backend=backend)
        if skip_finest_levels is not None:
            config = replace(config, skip_finest_levels=skip_finest_levels)
        recognizer = faceengine.load(model_dir(), detector=config)
        self.embedder = recognizer.embedder
        if package_detector:
            from mtcnn import MTCNN

            package = MTCNN()

            def detect(rgb):
                found = package.detect_faces(rgb, threshold_onet=0.8)
                return [
                    (
                        f["box"],
                        np.array(
                            [f["keypoints"][k] for k in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")],
                            np.float32,
                        ),
                    )
                    for f in found
                    if f["confidence"] >= 0.9 and min(f["box"][2:]) >= 20
                ]

            self.detect = detect
        else:
            detector = recognizer.detector
            # What the product runs: the normal pass, and the thorough pass where it finds nothing.
            self.detect = lambda rgb: [(f.box, f.landmarks) for f in detector.detect_thorough(rgb)[0]]

    def run(self, rgb: np.ndarray) -> dict:
        t0 = time.perf_counter()
        faces = self.detect(rgb)
        t1 = time.perf_counter()
        crops = np.stack([self.align(rgb, lm) for _, lm in faces]) if faces else None
        t2 = time.perf_counter()
        if crops is not None:
            self.embedder.embed(crops)
        t3 = time.perf_counter()
        boxes = [[float(v) for v in box] for box, _ in faces]
        return {"detect": t1 - t0, "align": t2 - t1, "embed": t3 - t2, "total": t3 - t0, "boxes": boxes}


class FaceRecognitionPipeline:
    def __init__(self) -> None:
        import face_recognition

        self.fr = face_recognition

    def run(self, rgb: np.ndarray) -> dict:
        t0 = time.perf_counter()
        locations = self.fr.face_locations(rgb, model="hog")
        t1 = time.perf_counter()
        # dlib aligns with its own 5-point shape predictor inside face_encodings.
        self.fr.face_encodings(rgb, locations)
        t2 = time.perf_counter()
        boxes = [
            [float(left), float(top), float(right - left), float(bottom - top)]
            for top, right, bottom, left in locations
        ]
        return {"detect": t1 - t0, "align": 0.0, "embed": t2 - t1, "total": t2 - t0, "boxes": boxes}


def run_child(system: str, limit: int, size: int, repeat: int) -> dict:
    photos = _load_photos(limit, size)
    pipeline: FaceRecognitionPipeline | FacesitePipeline
    if system == "face_recognition":
        pipeline = FaceRecognitionPipeline()
    else:
        pipeline = FacesitePipeline(
            "tf" if system == "facesite-tf" else "tflite",
            package_detector=system == "mtcnn-package",
            skip_finest_levels=0 if system == "facesite-all-levels" else None,
        )
    pipeline.run(photos[0][1])  # warm-up: graph building, XNNPACK delegate set-up
    per_stage: dict[str, list[float]] = {key: [] for key in ("detect", "align", "embed", "total")}
    per_face: dict[str, list[float]] = {key: [] for key in ("detect", "align", "embed", "total")}
    boxes = {}
    for _ in range(repeat):
        for name, rgb in photos:
            result = pipeline.run(rgb)
            boxes[name] = result["boxes"]
            for key in per_stage:
                per_stage[key].append(result[key])
                if result["boxes"]:
                    per_face[key].append(result[key] / len(result["boxes"]))
    return {
        "system": system,
        "photos": len(photos),
        "faces": sum(len(b) for b in boxes.values()),
        "median_ms_per_photo": {k: median_ms(v) for k, v in per_stage.items()},
        "median_ms_per_face": {k: median_ms(v) for k, v in per_face.items()},
        "peak_rss_mb": peak_rss_mb(),
        "boxes": boxes,
    }


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / (aw * ah + bw * bh - inter) if inter else 0.0


def agreement(reference: dict, other: dict) -> int:
    """Faces of ``other`` that overlap a face of ``reference`` (IoU >= 0.3: box styles differ)."""
    count = 0
    for name, boxes in other["boxes"].items():
        count += sum(any(_iou(b, r) >= 0.3 for r in reference["boxes"].get(name, [])) for b in boxes)
    return count


def available(system: str) -> bool:
    if system != "face_recognition":
        return True
    try:
        import face_recognition  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=20, help="Number of sample photos (sorted).")
    parser.add_argument("--size", type=int, default=640, help="Long side the photos are resized to.")
    parser.add_argument("--repeat", type=int, default=3, help="Passes over the photos.")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="Comma-separated subset.")
    parser.add_argument("--json", type=Path, default=Path("bench-engine.json"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(run_child(args.child, args.limit, args.size, args.repeat)))
        return

    results = []
    for system in args.systems.split(","):
        if not available(system):
            print(f"{system}: not installed (pip install -r requirements-bench.txt); skipped")
            continue
        command = [
            sys.executable,
            __file__,
            "--child",
            system,
            "--limit",
            str(args.limit),
            "--size",
            str(args.size),
            "--repeat",
            str(args.repeat),
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{system}: failed\n{done.stderr[-2000:]}")
            continue
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))

    reference = next((r for r in results if r["system"] == "face_recognition"), None) or next(
        (r for r in results if r["system"] == "mtcnn-package"), None
    )
    package = next((r for r in results if r["system"] == "mtcnn-package"), None)
    rows = []
    for r in results:
        photo, face = r["median_ms_per_photo"], r["median_ms_per_face"]
        agree = agreement(reference, r) if reference else "-"
        # Ratios measured in the same run travel between machines better than milliseconds.
        speedup = (
            round(package["median_ms_per_photo"]["total"] / photo["total"], 2) if package and photo["total"] else "-"
        )
        r["speedup_vs_package"] = speedup
        rows.append(
            [
                r["system"],
                r["photos"],
                r["faces"],
                agree,
                photo["detect"],
                photo["align"],
                photo["embed"],
                photo["total"],
                speedup,
                face["total"],
                r["peak_rss_mb"],
            ]
        )
    print(
        f"\n{args.limit} sample photos at {args.size} px, {args.repeat} passes, median ms; "
        f"'agree' = faces overlapping a {reference['system'] if reference else '-'} face"
    )
    print_table(
        [
            "system",
            "photos",
            "faces",
            "agree",
            "detect",
            "align",
            "embed",
            "photo total",
            "x package",
            "per face",
            "peak RSS MB",
        ],
        rows,
    )
    write_json(
        args.json,
        {
            "limit": args.limit,
            "size": args.size,
            "repeat": args.repeat,
            "reference": reference["system"] if reference else None,
            "results": [
                {k: v for k, v in r.items() if k != "boxes"} | {"agree": agreement(reference, r) if reference else None}
                for r in results
            ],
        },
    )


if __name__ == "__main__":
    main()
