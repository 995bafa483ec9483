"""manage.py evaluate: 10-fold face verification accuracy on LFW, CFP or insightface .bin packs."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from faceengine.errors import EngineError
from faceengine.evaluation.datasets import load_benchmark, read_lfw
from faceengine.evaluation.runner import evaluate_pairset
from facesite.engine import get_recognizer


class Command(BaseCommand):
    help = (
        "Run a verification benchmark through the whole pipeline (MTCNN, alignment, embedding) "
        "with the standard 10-fold protocol: threshold chosen on 9 folds, accuracy on the 10th. "
        "Prints mean accuracy and std, AUC, TAR at FAR=1e-3 and the number of fallbacks."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--benchmark",
            required=True,
            choices=["lfw", "cfp-fp", "cfp-ff", "bin"],
            help="lfw: a folder with pairs.txt and the images; cfp-fp / cfp-ff: the "
            "CFP dataset folder (with Protocol/); bin: an insightface .bin file "
            "or a folder of them (AgeDB-30, CALFW, CPLFW).",
        )
        parser.add_argument("--data", required=True, type=Path, help="Where the benchmark lies.")
        parser.add_argument(
            "--pairs",
            default="pairs.txt",
            help="LFW only: the pairs file inside --data (pairs.txt = View 2; "
            "pairsDevTrain.txt / pairsDevTest.txt = View 1).",
        )
        parser.add_argument(
            "--flip",
            action="store_true",
            help="Flip test-time augmentation: sum the embeddings of each face and its mirror image.",
        )
        parser.add_argument("--model", default=None, help="Model name (default: the configured one).")
        parser.add_argument(
            "--json", type=Path, dest="json_out", help="Write the results here as JSON, one entry per benchmark."
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args, **options) -> None:
        data: Path = options["data"]
        if not data.exists():
            raise CommandError(f"{data} does not exist.")
        try:
            kind = options["benchmark"]
            pairsets = [read_lfw(data, options["pairs"])] if kind == "lfw" else load_benchmark(kind, data)
            recognizer = get_recognizer(options["model"], flip=options["flip"])
        except (ValueError, FileNotFoundError, EngineError) as exc:
            raise CommandError(str(exc)) from exc

        reports = []
        for pairset in pairsets:

            def progress(items, name=pairset.name):
                return tqdm(items, desc=name, unit="img", disable=options["no_progress"], file=self.stderr._out)

            reports.append(evaluate_pairset(pairset, recognizer, progress))

        self._print_table(recognizer.model_name, options["flip"], reports)
        if options["json_out"]:
            payload = {report.name: report.as_dict() for report in reports}
            options["json_out"].write_text(json.dumps(payload, indent=2))
            self.stdout.write(f"Wrote {options['json_out']}")

    def _print_table(self, model: str, flip: bool, reports) -> None:
        label = f"{model}{' +flip' if flip else ''}"
        names = [report.name for report in reports]
        self.stdout.write("| model | " + " | ".join(names) + " |")
        self.stdout.write("|---" * (len(names) + 1) + "|")
        cells = [f"{100 * r.result.accuracy:.2f} ± {100 * r.result.std:.2f}" for r in reports]
        self.stdout.write(f"| {label} | " + " | ".join(cells) + " |")
        self.stdout.write("")
        for r in reports:
            res = r.result
            line = (
                f"{r.name}: accuracy {100 * res.accuracy:.2f}% ± {100 * res.std:.2f}, "
                f"threshold {res.threshold:.3f}, AUC {res.auc:.4f}, "
                f"TAR@FAR=1e-3 {100 * res.tar_at_far_1e3:.2f}%, pairs {res.pairs}, "
                f"second-pass detections {r.second_pass}, fallbacks {r.fallbacks} "
                f"({r.pairs_with_fallback} pairs)"
            )
            if r.accuracy_without_second_pass is not None:
                line += (
                    f", accuracy had the second-pass faces been centre crops "
                    f"{100 * r.accuracy_without_second_pass:.2f}%"
                )
            if r.accuracy_without_fallback is not None:
                line += f", accuracy without fallback pairs {100 * r.accuracy_without_fallback:.2f}%"
            self.stdout.write(line)
            passes = ", ".join(f"{how} {count}" for how, count in sorted(r.passes.items()))
            detectors = ", ".join(f"{name} {count}" for name, count in sorted(r.detectors.items()))
            self.stdout.write(f"  images by pass: {passes}; faces by detector: {detectors}")
