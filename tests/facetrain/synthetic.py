"""Small synthetic identity folders for the trainer's plumbing tests (no photos needed).

Each class is a fixed random pattern plus per-image noise, so a tiny network can tell the
classes apart in a few dozen steps (the loss falls), and every image is left-right asymmetric,
so a flip is visible.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def make_identity_folder(root: Path, *, classes: int = 4, per_class: int = 8, size: int = 32, seed: int = 0) -> Path:
    """``root/p<k>/<i>.png`` crops of ``size`` x ``size``; returns ``root``."""
    rng = np.random.default_rng(seed)
    for label in range(classes):
        person = root / f"p{label}"
        person.mkdir(parents=True, exist_ok=True)
        base = rng.integers(0, 256, (size, size, 3))
        for index in range(per_class):
            image = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(person / f"{index}.png"), image)
    return root


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
