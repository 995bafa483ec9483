"""manage.py calibrate_model: measure a model's impostor scores on labelled photos, so the 1:N
threshold fits the faces it will see."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from faceengine.calibration import calibration_path, measure_calibration, save_calibration
from faceengine.errors import FacesiteError
from faceengine.evaluation.identities import embed_labelled_photos, read_identity_folder
from facesite.engine import active_model_spec, get_recognizer
from members.selectors import gallery_settings

GALLERY_SIZES = (1, 10, 100, 1000, 10000, 100000)


class Command(BaseCommand):
    help = (
        "Measure the open-set calibration of a model on your own labelled photos: a folder with one "
        "sub-folder of photos per person (at least two people, some with two or more photos). Every "
        "photo goes through the pipeline (detection, alignment, embedding); each person with two or "
        "more photos becomes a template of up to --enrol of them and is scored against every other "
        "person's faces. The result is stored beside the model (FACESITE_MODEL_DIR/<model>.calibration.json) "
        "and from then on decides the 1:N threshold for each gallery size; delete it to go back to "
        "the built-in calibration."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("folder", type=Path, help="One sub-folder of photos per person.")
        parser.add_argument("--model", default=None, help="Model name (default: the configured FACESITE_MODEL).")
        parser.add_argument("--enrol", type=int, default=5, help="Photos per template (default 5).")
        parser.add_argument(
            "--output", type=Path, default=None, help="Where to write it (default: beside the model's weights)."
        )
        parser.add_argument(
            "--cache", type=Path, default=None, help="A folder to keep the faces and vectors in between runs."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            spec = active_model_spec(options["model"])
            recognizer = get_recognizer(spec.name)
            photos = read_identity_folder(options["folder"])
            if not photos:
                raise CommandError(f"No photos in the sub-folders of {options['folder']}.")
            faces = embed_labelled_photos(
                recognizer, photos, cache_dir=options["cache"], progress=lambda items: tqdm(items, disable=None)
            )
            calibration = measure_calibration(
                faces.vectors,
                faces.labels,
                model_name=spec.name,
                enrol=options["enrol"],
                source={
                    "data": str(Path(options["folder"]).name),
                    "flip": recognizer.flip,
                    "no_face": sum(how == "fallback" for how in faces.hows),
                    "measured": datetime.date.today().isoformat(),
                },
            )
        except (FacesiteError, FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        output = options["output"] or calibration_path(Path(settings.FACESITE_MODEL_DIR), spec.name)
        save_calibration(calibration, output)
        source = calibration.source
        self.stdout.write(
            f"{spec.name}: {source['people']} people, {source['faces']} faces ({source['no_face']} without a face), "
            f"{source['members']} templates; {source['template_pairs']:,} template and "
            f"{source['sample_pairs']:,} face impostor pairs. Written to {output}."
        )
        far = float(gallery_settings()["FALSE_ACCEPT_RATE"])
        self.stdout.write(f"1:N threshold at a false-accept rate of {far:g} per stranger face:")
        for size in GALLERY_SIZES:
            self.stdout.write(
                f"  {size:>7,} members: {calibration.threshold(size, far):.3f} (template), "
                f"{calibration.threshold(size, far, 'sample'):.3f} (sample, per enrolment face)"
            )
