"""1:N identification on LFW through the services and the gallery index, real engine.

Every LFW person with at least 10 photos (158 people) is enrolled with their first 5 photos
through ``member_create``; each of their other photos is identified against the templates.
500 people who are not enrolled (one photo each) must be refused at the default threshold.
Each photo is embedded once.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from members import selectors, services
from members.models import Template
from tests.fakes import lfw_photos

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

ENROL = 5
MIN_PHOTOS = 10
STRANGERS = 500


def rates(
    best_labels: np.ndarray, best_sims: np.ndarray, truth: np.ndarray, stranger_sims: np.ndarray, threshold: float
) -> tuple[float, float]:
    named = float(np.mean((best_labels == truth) & (best_sims >= threshold)))
    false_accept = float(np.mean(stranger_sims >= threshold))
    return named, false_accept


def search(gallery, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    results = gallery.search(embeddings, k=2)
    labels = np.array([row[0].label for row in results])
    sims = np.array([row[0].similarity for row in results])
    margins = np.array([row[0].similarity - row[1].similarity for row in results])
    return labels, sims, margins


def test_lfw_rank1_and_false_accepts_at_the_default_threshold(lfw_dir, real_recognizer, capsys):
    started = time.perf_counter()
    folders = sorted(p for p in lfw_dir.iterdir() if p.is_dir())
    photos = {p.name: lfw_photos(lfw_dir, p.name) for p in folders}
    enrolled = [name for name in photos if len(photos[name]) >= MIN_PHOTOS]
    others = [name for name in photos if len(photos[name]) < MIN_PHOTOS and photos[name]]
    rng = np.random.default_rng(2024)
    strangers = sorted(rng.choice(others, size=STRANGERS, replace=False).tolist())
    assert len(enrolled) >= 150, f"only {len(enrolled)} LFW people with {MIN_PHOTOS}+ photos"

    member_of: dict[str, int] = {}
    refused = 0
    for name in enrolled:
        result = services.member_create(
            display_name=name.replace("_", " "), external_id=name, photos=photos[name][:ENROL]
        )
        member_of[name] = result.member.pk
        refused += len(result.failed)
    enrol_seconds = time.perf_counter() - started
    assert Template.objects.count() == len(enrolled)

    def embed(paths):
        return np.stack([real_recognizer.embed_primary(p).embedding for p in paths])

    probe_paths, truth = [], []
    for name in enrolled:
        for path in photos[name][ENROL:]:
            probe_paths.append(path)
            truth.append(member_of[name])
    truth = np.array(truth)
    probes = embed(probe_paths)
    stranger_embeddings = embed([photos[name][0] for name in strangers])
    threshold = selectors.identification_threshold()

    report = {}
    for match in ("template", "sample"):
        gallery = selectors.gallery_for_model(
            model_name=real_recognizer.model_name, dim=real_recognizer.dim, match=match
        )
        labels, sims, margins = search(gallery, probes)
        _, stranger_sims, _ = search(gallery, stranger_embeddings)
        named, far = rates(labels, sims, truth, stranger_sims, threshold)
        sweep = {t: rates(labels, sims, truth, stranger_sims, t) for t in np.round(np.arange(0.50, 0.655, 0.01), 2)}
        report[match] = {
            "rank1": float(np.mean(labels == truth)),
            "named": named,
            "far": far,
            "false_accepts": int(np.sum(stranger_sims >= threshold)),
            "median_margin_correct": float(np.median(margins[labels == truth])),
            "sweep": sweep,
            "size": len(gallery),
        }

    with capsys.disabled():
        print(
            f"\nLFW 1:N, {real_recognizer.model_name}: {len(enrolled)} members x {ENROL} photos "
            f"({refused} enrolment photos without a face), {len(probe_paths)} probes, "
            f"{len(strangers)} strangers, threshold {threshold}; enrolment {enrol_seconds:.0f} s, "
            f"total {time.perf_counter() - started:.0f} s"
        )
        for match, r in report.items():
            print(
                f"  {match:8s} ({r['size']} vectors): rank-1 {100 * r['rank1']:.2f}%, named correctly "
                f"{100 * r['named']:.2f}%, strangers accepted {100 * r['far']:.2f}% "
                f"({r['false_accepts']}/{len(strangers)}), median margin {r['median_margin_correct']:.3f}"
            )
            print(
                "    threshold sweep (named / strangers accepted): "
                + ", ".join(f"{t:.2f}: {100 * n:.1f}% / {100 * f:.1f}%" for t, (n, f) in r["sweep"].items())
            )

    templates = report["template"]
    assert templates["rank1"] >= 0.98
    assert templates["far"] <= 0.01
    assert templates["named"] >= 0.97
