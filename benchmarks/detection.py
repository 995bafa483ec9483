"""Which detector, and which fallback: recall, false faces and speed of each configuration, in one run.

For each configuration (the normal pass's detector, and the thorough pass's second detector):

* recall on LFW tight crops: the central 110-150 px of deep-funneled photos (the face touches
  the border), and tighter 70-90 px crops (the face fills the frame);
* recall on the full LFW photos;
* the sample photos: photos with a face found, faces found, and faces that the other
  detector does not confirm (a box that no face of a configuration with the other normal-pass
  detector overlaps by IoU 0.3: the candidates for false faces), plus faces "found" on the
  sample photo of no face (a landscape);
* the median time of the whole detection (the thorough pass included where it runs) on the
  sample photos at 640 px.

Recall counts photos with at least one face found; an LFW photo holds one subject. The LFW
photos are a seeded random sample (``--lfw N``).

    python benchmarks/detection.py [--lfw 500] [--json bench-detection.json]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    median_ms,
    model_dir,
    print_table,
    resize_long_side,
    sample_photos,
    test_data_dir,
    write_json,
)

CONFIGURATIONS = {
    # name: (normal pass, second detector of the thorough pass)
    "mtcnn": ("mtcnn", None),
    "yunet": ("yunet", None),
    "mtcnn + yunet fallback (default)": ("mtcnn", "yunet"),
    "yunet + mtcnn fallback": ("yunet", "mtcnn"),
}
# Sample photos with no real face in them (a landscape; a drawn face is not a person).
NO_FACE = ("insightface/cpp-package/inspireface/test_res/data/bulk/view.jpg",)
IOU_SAME = 0.3


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = w * h
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def lfw_photos(count: int, seed: int = 0) -> list[Path]:
    root = test_data_dir() / "lfw" / "lfw-deepfunneled"
    if not root.is_dir():
        raise SystemExit(f"{root} not found: set FACESITE_TEST_DATA to the shared faces folder")
    photos = sorted(root.glob("*/*.jpg"))
    return random.Random(seed).sample(photos, min(count, len(photos)))


def tight_crop(rgb: np.ndarray, side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    top, left = (h - side) // 2, (w - side) // 2
    return np.ascontiguousarray(rgb[top : top + side, left : left + side])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=int, default=500, help="LFW photos in the sample (seeded).")
    parser.add_argument("--size", type=int, default=640, help="Long side of the sample photos.")
    parser.add_argument("--json", type=Path, default=Path("bench-detection.json"))
    args = parser.parse_args()

    import faceengine
    from faceengine.images import load_image

    rng = random.Random(1)
    lfw = [load_image(p) for p in lfw_photos(args.lfw)]
    tight = [tight_crop(rgb, rng.randint(110, 150)) for rgb in lfw]
    tighter = [tight_crop(rgb, rng.randint(70, 90)) for rgb in lfw]
    samples = [(p, resize_long_side(load_image(p), args.size)) for p in sample_photos()]
    root = test_data_dir() / "samples"

    base = faceengine.load(model_dir()).detector.config
    results: dict[str, dict] = {}
    sample_faces: dict[str, list[list[tuple[float, ...]]]] = {}
    for name, (detector, fallback) in CONFIGURATIONS.items():
        config = replace(base, detector=detector, fallback=fallback)
        found = faceengine.load(model_dir(), detector=config).detector

        def recall(images: list[np.ndarray], find=found) -> float:
            return 100.0 * sum(bool(find.detect_thorough(im)[0]) for im in images) / len(images)

        row: dict = {"detector": detector, "fallback": fallback}
        row["lfw_tight_110_150"] = recall(tight)
        row["lfw_tight_70_90"] = recall(tighter)
        row["lfw_full"] = recall(lfw)
        times: list[float] = []
        boxes: list[list[tuple[float, ...]]] = []
        passes: dict[str, int] = {}
        no_face_found = 0
        for path, rgb in samples:
            started = time.perf_counter()
            faces, how = found.detect_thorough(rgb)
            times.append(time.perf_counter() - started)
            boxes.append([tuple(f.box) for f in faces])
            if faces:
                passes[how] = passes.get(how, 0) + 1
            if str(path.relative_to(root)) in NO_FACE and faces:
                no_face_found += len(faces)
        sample_faces[name] = boxes
        row["sample_photos_with_face"] = sum(bool(b) for b in boxes)
        row["sample_faces"] = sum(len(b) for b in boxes)
        row["faces_on_no_face_photos"] = no_face_found
        row["photos_by_pass"] = passes
        row["median_ms_640"] = median_ms(times)
        results[name] = row
        print(f"{name}: done", flush=True)

    # Faces that no configuration with the other normal-pass detector confirms: the candidates
    # for false faces (a configuration that shares the detector would confirm its own).
    for name, boxes in sample_faces.items():
        mine = CONFIGURATIONS[name][0]
        others = [b for other, b in sample_faces.items() if CONFIGURATIONS[other][0] != mine]
        unconfirmed = 0
        for index, photo_boxes in enumerate(boxes):
            for box in photo_boxes:
                if not any(iou(box, o) >= IOU_SAME for other in others for o in other[index]):
                    unconfirmed += 1
        results[name]["sample_faces_unconfirmed"] = unconfirmed

    print(f"\n{len(lfw)} LFW photos (seeded sample), {len(samples)} sample photos at {args.size} px; recall in %")
    headers = [
        "configuration",
        "LFW tight 110-150",
        "LFW tight 70-90",
        "LFW full",
        "samples with a face",
        "sample faces",
        "unconfirmed",
        "faces on no-face photos",
        "median ms",
    ]
    print_table(
        headers,
        [
            [
                name,
                r["lfw_tight_110_150"],
                r["lfw_tight_70_90"],
                r["lfw_full"],
                f"{r['sample_photos_with_face']}/{len(samples)}",
                r["sample_faces"],
                r["sample_faces_unconfirmed"],
                r["faces_on_no_face_photos"],
                r["median_ms_640"],
            ]
            for name, r in results.items()
        ],
    )
    write_json(
        args.json, {"lfw_photos": len(lfw), "sample_photos": len(samples), "size": args.size, "configurations": results}
    )


if __name__ == "__main__":
    main()
