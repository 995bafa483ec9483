"""How often the harder second pass finds a face the normal pass missed, on the sample photos.

For every sample photo: faces found by the normal pass; for photos where it found none, whether
the second pass (upscaled copy, lower stage thresholds, smaller minimum face) finds one, which
would otherwise be a blind centre crop. Prints a table and writes JSON.

    python benchmarks/second_pass.py [--json bench-second-pass.json]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import model_dir, print_table, sample_photos, test_data_dir, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=Path("bench-second-pass.json"))
    args = parser.parse_args()

    import faceengine
    from faceengine.errors import ImageError
    from faceengine.images import load_image

    detector = faceengine.load(model_dir()).detector
    root = test_data_dir() / "samples"
    photos, faces = 0, 0
    unreadable: list[str] = []
    rescued: list[str] = []
    still_none: list[str] = []
    for path in sample_photos():
        try:
            rgb = load_image(path)
        except ImageError as exc:
            unreadable.append(f"{path.relative_to(root)}: {exc}")
            continue
        photos += 1
        found = detector.detect(rgb)
        faces += len(found)
        if found:
            continue
        second, _how = detector.detect_thorough(rgb)
        (rescued if second else still_none).append(str(path.relative_to(root)))
    rows = [
        ["sample photos read", photos],
        ["faces found by the normal pass", faces],
        ["photos with no face at the normal pass", len(rescued) + len(still_none)],
        ["  ... found by the second pass", len(rescued)],
        ["  ... still none (would be a centre crop)", len(still_none)],
        ["unreadable files", len(unreadable)],
    ]
    print_table(["", "count"], rows)
    print("rescued by the second pass:", ", ".join(rescued) or "-")
    print("no face at all:", ", ".join(still_none) or "-")
    write_json(
        args.json,
        {"photos": photos, "faces": faces, "rescued": rescued, "still_none": still_none, "unreadable": unreadable},
    )


if __name__ == "__main__":
    main()
