"""manage.py cluster_unknown_faces: cluster every unknown face not in a cluster yet, now."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from facesite.engine import active_model_spec
from recognition.unknowns import unknown_faces_cluster


class Command(BaseCommand):
    help = (
        "Cluster the unknown faces of the active model (or --model) that are in no cluster yet; "
        "what the worker does after each job, for faces whose task was never queued."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--model", default=None, help="Model name (default: the active model).")

    def handle(self, *args, **options) -> None:
        report = unknown_faces_cluster(model_name=options["model"] or active_model_spec().name)
        self.stdout.write(json.dumps(report))
