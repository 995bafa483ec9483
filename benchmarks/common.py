"""Shared helpers for the benchmark scripts: photo lists, resizing, timing, memory, tables."""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def test_data_dir() -> Path:
    return Path(os.environ.get("FACESITE_TEST_DATA", ROOT.parent / "shared" / "faces"))


def model_dir() -> Path:
    """Where ``manage.py fetch_models`` put the weights (FACESITE_MODEL_DIR, default var/models)."""
    return Path(os.environ.get("FACESITE_MODEL_DIR", ROOT / "var" / "models"))


def sample_photos(limit: int | None = None) -> list[Path]:
    """The sample photos in a stable order (sorted paths), optionally the first ``limit``."""
    root = test_data_dir() / "samples"
    if not root.is_dir():
        raise SystemExit(f"{root} not found: set FACESITE_TEST_DATA to the shared faces folder")
    photos = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return photos[:limit] if limit else photos


def resize_long_side(image: np.ndarray, long_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def peak_rss_mb() -> float:
    """The process's peak resident memory (VmHWM), which counts TensorFlow's native buffers."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def median_ms(seconds: list[float]) -> float:
    return 1000 * statistics.median(seconds) if seconds else float("nan")


def percentile_ms(seconds: list[float], q: float) -> float:
    return 1000 * float(np.percentile(seconds, q)) if seconds else float("nan")


def print_table(headers: list[str], rows: list[list]) -> None:
    cells = [[f"{c:.1f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    for row in cells:
        print("| " + " | ".join(row) + " |")


def write_json(path: Path, payload: dict) -> None:
    Path(path).write_text(json.dumps(payload, indent=2))
    print(f"wrote {path}")
