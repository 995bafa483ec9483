"""Enrolment quality on LFW: the quality distribution, what degrading a face does to it, whether
quality-weighted templates identify better than the plain mean, and how well the leave-one-out
outlier check finds a wrong person's photo among a member's faces.

* distribution: percentiles of eye distance, sharpness, |yaw|, |pitch|, score over every photo
  processed (LFW) and every face of the sample photos, to choose the warning thresholds of
  ``faceengine.quality``;
* degradation: enrolled LFW faces blurred (Gaussian sigma) or shrunk (to an eye distance), their
  sharpness, warnings and cosine to the untouched face's embedding;
* templates: people with at least 6 photos, 5 enrolled (embedding + quality), the rest probes,
  plus one photo each of strangers: rank-1 identification, genuine / best-impostor similarity,
  d', strangers accepted at the model's 1:N threshold, for the plain mean and weighted means;
* outliers: each member's 5 clean faces (false flag rate) and the same with one replaced by a
  stranger's photo (detection rate), leave-one-out cosine below the model's 1:1 threshold.

    python benchmarks/enrolment_quality.py [--people 150] [--strangers 300] [--json bench-enrolment-quality.json]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import faceengine  # noqa: E402
from benchmarks.common import model_dir, print_table, sample_photos, test_data_dir, write_json  # noqa: E402
from faceengine.embedders.registry import load_model_spec  # noqa: E402
from faceengine.index import normalize_rows  # noqa: E402
from faceengine.quality import FaceQuality, assess_face  # noqa: E402
from faceengine.recognizer import Face  # noqa: E402

ENROLLED = 5
MAX_PROBES = 3


def lfw_people(people: int, strangers: int, seed: int) -> tuple[dict[str, list[Path]], list[Path]]:
    root = test_data_dir() / "lfw" / "lfw-deepfunneled"
    if not root.is_dir():
        raise SystemExit(f"{root} not found: set FACESITE_TEST_DATA to the shared faces folder")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    photos = {p.name: sorted(p.glob("*.jpg")) for p in folders}
    rng = random.Random(seed)
    many = [name for name, files in photos.items() if len(files) >= ENROLLED + 1]
    chosen = sorted(rng.sample(many, min(people, len(many))))
    others = [name for name in photos if name not in set(many)]
    stranger_photos = [photos[name][0] for name in sorted(rng.sample(others, min(strangers, len(others))))]
    return {name: photos[name][: ENROLLED + MAX_PROBES] for name in chosen}, stranger_photos


class Item:
    def __init__(self, rgb: np.ndarray, face: Face, embedding: np.ndarray, quality: FaceQuality) -> None:
        self.rgb, self.face, self.embedding, self.quality = rgb, face, embedding, quality


def process(recognizer, path: Path) -> Item | None:
    rgb = recognizer.load(str(path))
    primary = recognizer.embed_primary(rgb)
    if primary.face is None:
        return None
    face = primary.face
    return Item(rgb, face, primary.embedding, assess_face(rgb, face.box, face.landmarks, face.score))


def percentiles(values: list[float]) -> list[float]:
    return [float(np.percentile(values, q)) for q in (1, 2, 5, 50, 95)] if values else [float("nan")] * 5


def distribution(rows: dict[str, list[FaceQuality]]) -> dict:
    out: dict[str, dict] = {}
    table = []
    for source, qualities in rows.items():
        measures = {
            "eye_distance": [q.eye_distance for q in qualities],
            "sharpness": [q.sharpness for q in qualities],
            "score": [q.score for q in qualities],
            # The worst are the largest angles: their high percentiles, shown as 99/98/95.
            "abs_yaw": [-abs(q.yaw) for q in qualities],
            "abs_pitch": [-abs(q.pitch) for q in qualities],
            "pitch": [q.pitch for q in qualities],
            "yaw": [q.yaw for q in qualities],
        }
        out[source] = {"faces": len(qualities)}
        for name, values in measures.items():
            p = percentiles(values)
            if name.startswith("abs_"):
                p = [-v for v in p]
            out[source][name] = dict(zip(("p1", "p2", "p5", "p50", "p95"), p, strict=True))
            table.append([source, name, *[f"{v:.3f}" for v in p]])
        warned: dict[str, int] = {}
        for q in qualities:
            for code in q.warnings:
                warned[code] = warned.get(code, 0) + 1
        out[source]["warned"] = {k: v / max(1, len(qualities)) for k, v in warned.items()}
    print("\nQuality distribution (for angles the columns are the worst 1/2/5%, i.e. p99/p98/p95, then p50, p5)")
    print_table(["source", "measure", "worst 1%", "worst 2%", "worst 5%", "p50", "best 5%"], table)
    for source, data in out.items():
        print(f"{source}: {data['faces']} faces, warned { ({k: f'{v:.1%}' for k, v in data['warned'].items()}) }")
    return out


def degradation(recognizer, items: list[Item]) -> dict:
    """Blur and shrink real faces: sharpness, warnings, cosine to the clean embedding."""
    out: dict[str, dict] = {}
    table = []
    steps: list[tuple[str, float]] = [("blur", s) for s in (1.0, 2.0, 3.0)] + [("shrink", d) for d in (30, 20, 16, 12)]
    for kind, amount in steps:
        cosines: list[float] = []
        sharp: list[float] = []
        warned: dict[str, int] = {}
        for item in items:
            rgb, landmarks, box = item.rgb, item.face.landmarks.copy(), list(item.face.box)
            if kind == "blur":
                changed = cv2.GaussianBlur(rgb, (0, 0), amount)
            else:
                scale = amount / max(item.quality.eye_distance, 1.0)
                size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
                changed = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
                landmarks, box = landmarks * scale, [v * scale for v in box]
            face = Face(tuple(box), item.face.score, landmarks)  # type: ignore[arg-type]
            vector = recognizer.embed_faces(changed, [face])[0]
            quality = assess_face(changed, box, landmarks, item.face.score)
            cosines.append(float(np.dot(normalize_rows(vector[None])[0], normalize_rows(item.embedding[None])[0])))
            sharp.append(quality.sharpness)
            for code in quality.warnings:
                warned[code] = warned.get(code, 0) + 1
        key = f"{kind}_{amount:g}"
        out[key] = {
            "cosine_mean": float(np.mean(cosines)),
            "sharpness_median": float(np.median(sharp)),
            "warned": {k: v / len(items) for k, v in warned.items()},
        }
        table.append(
            [
                key,
                f"{out[key]['cosine_mean']:.3f}",
                f"{out[key]['sharpness_median']:.1f}",
                ", ".join(f"{k} {v:.0%}" for k, v in sorted(out[key]["warned"].items())) or "-",
            ]
        )
    print("\nDegraded faces (cosine to the clean face's embedding)")
    print_table(["change", "cosine mean", "sharpness median", "warned"], table)
    return out


def weight_schemes() -> dict[str, Callable[[FaceQuality], float]]:
    def plain(q: FaceQuality) -> float:
        return 1.0

    def score_sharp(q: FaceQuality) -> float:
        return q.score * min(1.0, q.sharpness / 150.0)

    def frontal(q: FaceQuality) -> float:
        return float(np.cos(np.radians(min(abs(q.yaw), 80.0))) * np.cos(np.radians(min(abs(q.pitch), 80.0))))

    def combined(q: FaceQuality) -> float:
        return score_sharp(q) * frontal(q)

    def drop_warned(q: FaceQuality) -> float:
        return 0.2 if q.warnings else 1.0

    return {
        "plain mean": plain,
        "score x sharpness": score_sharp,
        "frontal (cos yaw cos pitch)": frontal,
        "combined": combined,
        "warned x0.2": drop_warned,
    }


def templates(
    enrolled: dict[str, list[Item]], probes: dict[str, list[Item]], strangers: list[Item], threshold: float
) -> dict:
    names = sorted(enrolled)
    probe_vectors = normalize_rows(np.stack([p.embedding for n in names for p in probes[n]]))
    probe_labels = np.array([i for i, n in enumerate(names) for _ in probes[n]])
    stranger_vectors = normalize_rows(np.stack([s.embedding for s in strangers]))
    out: dict[str, dict] = {}
    table = []
    for label, weight in weight_schemes().items():
        rows = []
        for n in names:
            vectors = normalize_rows(np.stack([i.embedding for i in enrolled[n]])).astype(np.float64)
            w = np.array([weight(i.quality) for i in enrolled[n]], np.float64)
            w = w if w.sum() > 0 else np.ones_like(w)
            rows.append((vectors * w[:, None]).sum(axis=0) / w.sum())
        gallery = normalize_rows(np.stack(rows).astype(np.float32))
        sims = probe_vectors @ gallery.T
        rank1 = float((sims.argmax(axis=1) == probe_labels).mean())
        genuine = sims[np.arange(len(sims)), probe_labels]
        impostor = sims.copy()
        impostor[np.arange(len(sims)), probe_labels] = -np.inf
        best_impostor = impostor.max(axis=1)
        all_impostor = sims[np.arange(len(names))[None, :] != probe_labels[:, None]]
        d_prime = float((genuine.mean() - all_impostor.mean()) / np.sqrt((genuine.var() + all_impostor.var()) / 2))
        stranger_best = (stranger_vectors @ gallery.T).max(axis=1)
        named = float(((sims.argmax(axis=1) == probe_labels) & (genuine >= threshold)).mean())
        out[label] = {
            "rank1": rank1,
            "named_at_threshold": named,
            "genuine_mean": float(genuine.mean()),
            "best_impostor_mean": float(best_impostor.mean()),
            "d_prime": d_prime,
            "strangers_accepted": float((stranger_best >= threshold).mean()),
        }
        table.append(
            [
                label,
                f"{rank1:.2%}",
                f"{named:.2%}",
                f"{genuine.mean():.4f}",
                f"{best_impostor.mean():.4f}",
                f"{d_prime:.3f}",
                f"{out[label]['strangers_accepted']:.2%}",
            ]
        )
    print(
        f"\nTemplates ({len(names)} members x {ENROLLED} faces, {len(probe_labels)} probes, "
        f"{len(strangers)} strangers; 1:N threshold {threshold})"
    )
    print_table(
        ["template", "rank-1", "named at threshold", "genuine mean", "best impostor mean", "d'", "strangers accepted"],
        table,
    )
    return out


def loo_flags(vectors: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(flagged, similarity) per face: cosine to the mean of the others below ``threshold``."""
    vectors = normalize_rows(vectors).astype(np.float64)
    total = vectors.sum(axis=0)
    sims = []
    for v in vectors:
        rest = total - v
        norm = np.linalg.norm(rest)
        sims.append(float(v @ rest / norm) if norm > 0 else 1.0)
    sims_arr = np.array(sims)
    return sims_arr < threshold, sims_arr


def outliers(enrolled: dict[str, list[Item]], strangers: list[Item], threshold: float, seed: int) -> dict:
    rng = random.Random(seed)
    clean_faces = clean_flagged = 0
    injected = detected = collateral = collateral_of = 0
    intruder_sims, clean_sims = [], []
    for name in sorted(enrolled):
        vectors = np.stack([i.embedding for i in enrolled[name]])
        flagged, sims = loo_flags(vectors, threshold)
        clean_faces += len(flagged)
        clean_flagged += int(flagged.sum())
        clean_sims += sims.tolist()
        slot = rng.randrange(len(vectors))
        intruder = strangers[rng.randrange(len(strangers))]
        mixed = vectors.copy()
        mixed[slot] = intruder.embedding
        flagged, sims = loo_flags(mixed, threshold)
        injected += 1
        detected += int(flagged[slot])
        intruder_sims.append(float(sims[slot]))
        others = np.delete(flagged, slot)
        collateral += int(others.sum())
        collateral_of += len(others)
    out = {
        "threshold": threshold,
        "members": len(enrolled),
        "detection_rate": detected / max(1, injected),
        "false_flag_rate_clean": clean_flagged / max(1, clean_faces),
        "false_flag_rate_beside_intruder": collateral / max(1, collateral_of),
        "intruder_similarity_median": float(np.median(intruder_sims)),
        "clean_similarity_p1": float(np.percentile(clean_sims, 1)),
        "clean_similarity_median": float(np.median(clean_sims)),
    }
    print(f"\nOutliers ({len(enrolled)} members x {ENROLLED} faces, leave-one-out cosine < {threshold})")
    print_table(
        [
            "detection rate",
            "false flags (clean)",
            "false flags (beside intruder)",
            "intruder sim median",
            "clean sim p1",
            "clean sim median",
        ],
        [
            [
                f"{out['detection_rate']:.1%}",
                f"{out['false_flag_rate_clean']:.2%}",
                f"{out['false_flag_rate_beside_intruder']:.2%}",
                f"{out['intruder_similarity_median']:.3f}",
                f"{out['clean_similarity_p1']:.3f}",
                f"{out['clean_similarity_median']:.3f}",
            ]
        ],
    )
    return out


def sample_qualities(recognizer) -> list[FaceQuality]:
    qualities = []
    for path in sample_photos():
        try:
            rgb = recognizer.load(str(path))
        except Exception:  # noqa: BLE001 - a sample the engine refuses is not a face to measure
            continue
        for face in recognizer.detect(rgb):
            qualities.append(assess_face(rgb, face.box, face.landmarks, face.score))
    return qualities


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=150)
    parser.add_argument("--strangers", type=int, default=300)
    parser.add_argument("--degrade", type=int, default=150, help="enrolled faces to blur and shrink")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-samples", action="store_true", help="leave the sample photos out of the distribution")
    parser.add_argument("--json", type=Path, default=Path("bench-enrolment-quality.json"))
    args = parser.parse_args()

    recognizer = faceengine.load(model_dir())
    spec = load_model_spec(recognizer.model_name, model_dir())
    people, stranger_paths = lfw_people(args.people, args.strangers, args.seed)
    started = time.perf_counter()
    enrolled: dict[str, list[Item]] = {}
    probes: dict[str, list[Item]] = {}
    for name, paths in people.items():
        items = [item for item in (process(recognizer, p) for p in paths) if item is not None]
        if len(items) < ENROLLED + 1:
            continue
        enrolled[name], probes[name] = items[:ENROLLED], items[ENROLLED:]
    strangers = [item for item in (process(recognizer, p) for p in stranger_paths) if item is not None]
    print(
        f"{sum(len(v) for v in enrolled.values()) + sum(len(v) for v in probes.values()) + len(strangers)} "
        f"LFW photos in {time.perf_counter() - started:.0f} s"
    )

    lfw_q = [i.quality for v in enrolled.values() for i in v] + [i.quality for v in probes.values() for i in v]
    lfw_q += [s.quality for s in strangers]
    sources = {"lfw": lfw_q}
    if not args.no_samples:
        sources["samples"] = sample_qualities(recognizer)
    payload = {
        "model": recognizer.model_name,
        "people": len(enrolled),
        "strangers": len(strangers),
        "distribution": distribution(sources),
        "degradation": degradation(recognizer, [i for v in enrolled.values() for i in v][: args.degrade]),
        "templates": templates(enrolled, probes, strangers, spec.identification_threshold),
        "outliers": outliers(enrolled, strangers, spec.verification_threshold, args.seed),
    }
    write_json(args.json, payload)


if __name__ == "__main__":
    main()
