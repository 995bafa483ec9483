"""manage.py recognize: the faces in photos and, when members exist, who they are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from faceengine.errors import EngineError
from facesite.engine import active_model_spec, get_recognizer


class Command(BaseCommand):
    help = (
        "Detect, align and embed every face in the given photos. When members are enrolled for "
        "the active model, each face is named (or unknown) with its similarity."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("images", nargs="+", type=Path, help="Photo files.")
        parser.add_argument("--json", action="store_true", help="Print a JSON list with one object per image.")
        parser.add_argument(
            "--threshold",
            type=float,
            default=None,
            help="Similarity needed to name a face (default: "
            "FACESITE_IDENTIFICATION_THRESHOLD, else the model's calibrated "
            "1:N threshold).",
        )
        parser.add_argument(
            "--model",
            default=None,
            help="Model name (default: the configured FACESITE_MODEL); members "
            "are matched only against their embeddings for this model.",
        )

    def handle(self, *args, **options) -> None:
        try:
            spec = active_model_spec(options["model"])
            recognizer = get_recognizer(options["model"])
        except EngineError as exc:
            raise CommandError(str(exc)) from exc
        from members.selectors import (
            gallery_for_model,
            identification_threshold,
            member_names,
        )

        threshold = options["threshold"]
        if threshold is None:
            threshold = identification_threshold(model_name=spec.name)
        gallery = gallery_for_model(model_name=spec.name, dim=spec.dim)
        names = member_names

        results = [self._recognize_one(path, recognizer, gallery, names, threshold) for path in options["images"]]
        if options["json"]:
            self.stdout.write(json.dumps(results, indent=2))
        else:
            self._print_text(results)
        if all(result["error"] for result in results):
            raise CommandError("No image could be read.")

    def _recognize_one(self, path: Path, recognizer, gallery, names, threshold: float) -> dict:
        entry: dict[str, Any] = {"image": str(path), "faces": [], "error": None}
        try:
            if len(gallery):
                faces = recognizer.recognize(path, gallery, threshold)
            else:
                faces = recognizer.analyze(path)
        except EngineError as exc:
            entry["error"] = str(exc)
            return entry
        labels = {face.label for face in faces if getattr(face, "label", None) is not None}
        display = names(labels) if labels else {}
        for face in faces:
            data = face.to_dict()
            label = getattr(face, "label", None)
            similarity = getattr(face, "similarity", None)
            entry["faces"].append(
                {
                    "box": data["box"],
                    "score": data["score"],
                    "landmarks": data["landmarks"],
                    "member": display.get(label) if label is not None else None,
                    "similarity": None if similarity is None else round(similarity, 4),
                }
            )
        return entry

    def _print_text(self, results: list[dict]) -> None:
        for result in results:
            if result["error"]:
                self.stdout.write(f"{result['image']}: error: {result['error']}")
                continue
            self.stdout.write(f"{result['image']}: {len(result['faces'])} face(s)")
            for index, face in enumerate(result["faces"], 1):
                x, y, w, h = face["box"]
                who = face["member"] or "unknown"
                sim = "" if face["similarity"] is None else f" (similarity {face['similarity']:.3f})"
                self.stdout.write(
                    f"  {index}. box {x:.0f},{y:.0f} {w:.0f}x{h:.0f} score {face['score']:.3f}: {who}{sim}"
                )
