"""Open-set identification on LFW at the threshold calibrated for each gallery size.

    .venv/bin/python benchmarks/open_set.py [--models mobilefacenet,sface] [--sizes 10 100 1000]
        [--far 0.01] [--draws 5] [--json artifacts/open-set.json]

Members are LFW people with at least two photos: up to 5 (and never all) of a member's photos
are enrolled as a mean template, as an enrolment does, the rest are probes that should be named.
Strangers are people with exactly one photo. Every photo goes through the whole pipeline
(detection, alignment, embedding, the product's flip setting); the faces and vectors are cached
in var/cache/identities, so a second run only scores.

The threshold is measured the honest way: the calibration (``faceengine.calibration``) is
measured on people who take no part in the draw (every multi-photo person outside the gallery and
half of the strangers), then applied to a gallery of members and the other half of the
strangers. The built-in calibration, measured on all of LFW, is reported beside it (in-sample).

Printed per model and gallery size: the calibrated threshold, strangers accepted per stranger
face (measured, and the calibration's own estimate), members' photos named correctly, and
closed-set rank-1; the same at the model's one fixed threshold (before calibration); then
whether a margin rule (best minus second-best at least m, with the
threshold lowered until as many strangers pass as before) names more members.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import model_dir, print_table, test_data_dir, write_json  # noqa: E402

MARGINS = (0.02, 0.05, 0.1)
CACHE = ROOT / "var" / "cache" / "identities"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mobilefacenet")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--far", type=float, default=0.01, help="Target false accepts per stranger face.")
    parser.add_argument("--enrol", type=int, default=5)
    parser.add_argument("--draws", type=int, default=5, help="Galleries drawn per size (each with its own seed).")
    parser.add_argument("--flip", action="store_true", help="Flip test-time augmentation (the product's default: off).")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    rows, results = [], {}
    for model in args.models.split(","):
        faces = lfw_faces(model, args.flip)
        for size in args.sizes:
            result = run_size(faces, model, size, args.far, args.enrol, args.draws)
            results[f"{model}/{size}"] = result
            rows.append(
                [
                    model,
                    size,
                    f"{result['threshold']:.3f}",
                    f"{100 * result['strangers_accepted']:.2f}",
                    f"{100 * result['estimated_far']:.2f}",
                    f"{100 * result['named']:.2f}",
                    f"{100 * result['rank1']:.2f}",
                    f"{result['stored_threshold']:.3f}",
                    f"{100 * result['stored_strangers_accepted']:.2f}",
                    f"{100 * result['stored_named']:.2f}",
                    f"{100 * result['fixed_strangers_accepted']:.2f} / {100 * result['fixed_named']:.2f}",
                    " ".join(f"{m}:{100 * v:.2f}" for m, v in result["margin_named"].items()),
                ]
            )
    print_table(
        [
            "model",
            "members",
            "threshold",
            "strangers %",
            "estimated %",
            "named %",
            "rank-1 %",
            "stored thr",
            "strangers %",
            "named %",
            "fixed thr: strangers / named %",
            "margin m:named %",
        ],
        rows,
    )
    if args.json:
        write_json(args.json, {"far": args.far, "enrol": args.enrol, "draws": args.draws, "results": results})


def lfw_faces(model: str, flip: bool):
    import faceengine
    from faceengine.evaluation.identities import embed_labelled_photos, read_identity_folder

    root = test_data_dir() / "lfw"
    folder = root / "lfw-deepfunneled" if (root / "lfw-deepfunneled").is_dir() else root
    recognizer = faceengine.load(model_dir(), model=model, flip=flip)
    started = time.perf_counter()
    faces = embed_labelled_photos(recognizer, read_identity_folder(folder), cache_dir=CACHE)
    seconds = time.perf_counter() - started
    print(f"{model}: {len(faces.labels)} LFW photos embedded or read from the cache in {seconds:.0f} s")
    return faces


def run_size(faces, model: str, size: int, far: float, enrol: int, draws: int) -> dict:
    from faceengine.calibration import load_calibration, measure_calibration
    from faceengine.embedders.registry import load_model_spec

    multi = sorted(faces.people(min_photos=2).items())
    singles = np.array(sorted(i for ids in faces.people(max_photos=1).values() for i in ids))
    stored = load_calibration(model)
    fixed = load_model_spec(model, model_dir()).identification_threshold  # the one-size threshold
    totals: dict[str, float] = {}
    thresholds, stored_thresholds, estimates = [], [], []
    probe_best, probe_second, probe_right, stranger_best, stranger_second = [], [], [], [], []
    for draw in range(draws):
        rng = np.random.default_rng(1000 * size + draw)
        chosen = set(rng.choice(len(multi), size=size, replace=False).tolist())
        strangers = rng.permutation(singles)
        calibration_strangers, test_strangers = strangers[: len(strangers) // 2], strangers[len(strangers) // 2 :]
        outside = [i for k, (_, ids) in enumerate(multi) if k not in chosen for i in ids]
        calibration_faces = np.concatenate([np.asarray(outside, int), calibration_strangers])
        calibration = measure_calibration(
            faces.vectors[calibration_faces],
            [faces.labels[i] for i in calibration_faces],
            model_name=model,
            enrol=enrol,
            seed=draw,
        )
        threshold = calibration.threshold(size, far)
        thresholds.append(threshold)
        stored_thresholds.append(stored.threshold(size, far) if stored is not None else float("nan"))
        estimates.append(calibration.false_accept_rate(threshold, size))

        templates, probes, owners = [], [], []
        for member, k in enumerate(sorted(chosen)):
            ids = rng.permutation(multi[k][1])
            take = min(enrol, len(ids) - 1)
            mean = faces.vectors[ids[:take]].mean(axis=0)
            templates.append(mean / np.linalg.norm(mean))
            probes.extend(ids[take:].tolist())
            owners.extend([member] * (len(ids) - take))
        gallery = np.stack(templates)
        best, second, top = _search(faces.vectors[np.asarray(probes)], gallery)
        probe_best.append(best)
        probe_second.append(second)
        probe_right.append(top == np.asarray(owners))
        s_best, s_second, _ = _search(faces.vectors[test_strangers], gallery)
        stranger_best.append(s_best)
        stranger_second.append(s_second)
        for name, value in (
            ("probes", len(probes)),
            ("strangers", len(test_strangers)),
            ("named", int(((best >= threshold) & probe_right[-1]).sum())),
            ("rank1", int(probe_right[-1].sum())),
            ("accepted", int((s_best >= threshold).sum())),
            ("stored_named", int(((best >= stored_thresholds[-1]) & probe_right[-1]).sum())),
            ("stored_accepted", int((s_best >= stored_thresholds[-1]).sum())),
            ("fixed_named", int(((best >= fixed) & probe_right[-1]).sum())),
            ("fixed_accepted", int((s_best >= fixed).sum())),
        ):
            totals[name] = totals.get(name, 0) + value
    margin_named = _margin_rule(
        probe_best, probe_second, probe_right, stranger_best, stranger_second, thresholds, int(totals["probes"])
    )
    return {
        "threshold": float(np.mean(thresholds)),
        "thresholds": [round(t, 4) for t in thresholds],
        "strangers_accepted": totals["accepted"] / totals["strangers"],
        "estimated_far": float(np.mean(estimates)),
        "named": totals["named"] / totals["probes"],
        "rank1": totals["rank1"] / totals["probes"],
        "stored_threshold": float(np.mean(stored_thresholds)),
        "stored_strangers_accepted": totals["stored_accepted"] / totals["strangers"],
        "stored_named": totals["stored_named"] / totals["probes"],
        "margin_named": margin_named,
        "fixed_threshold": fixed,
        "fixed_strangers_accepted": totals["fixed_accepted"] / totals["strangers"],
        "fixed_named": totals["fixed_named"] / totals["probes"],
        "probes": int(totals["probes"]),
        "strangers": int(totals["strangers"]),
    }


def _search(queries: np.ndarray, gallery: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores = queries @ gallery.T
    order = np.argsort(-scores, axis=1)[:, :2]
    rows = np.arange(len(queries))
    best = scores[rows, order[:, 0]]
    second = scores[rows, order[:, 1]] if gallery.shape[0] > 1 else np.full(len(queries), -1.0)
    return best, second, order[:, 0]


def _margin_rule(probe_best, probe_second, probe_right, stranger_best, stranger_second, thresholds, probes) -> dict:
    """Members named by "best >= t' and best - second >= m", with t' the lowest threshold at which
    no more strangers pass than at the calibrated threshold alone (an oracle choice: if even
    this does not name more members, the margin adds nothing)."""
    out = {}
    grid = np.arange(0.0, 1.0, 0.005)
    for margin in MARGINS:
        named = 0
        for best, second, right, s_best, s_second, threshold in zip(
            probe_best, probe_second, probe_right, stranger_best, stranger_second, thresholds, strict=True
        ):
            allowed = int((s_best >= threshold).sum())
            s_margin_ok = (s_best - s_second) >= margin
            lowest = next(t for t in grid if int(((s_best >= t) & s_margin_ok).sum()) <= allowed)
            named += int(((best >= lowest) & ((best - second) >= margin) & right).sum())
        out[str(margin)] = named / probes
    return out


if __name__ == "__main__":
    main()
