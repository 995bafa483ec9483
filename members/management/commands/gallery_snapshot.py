"""manage.py gallery_snapshot: write the gallery index snapshot that starting workers load."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from members.snapshots import log_prune_behind_snapshots, snapshot_write, snapshots_write_active


class Command(BaseCommand):
    help = (
        "Write the active model's gallery index to the snapshot folder (FACESITE_GALLERY_SNAPSHOT_DIR), "
        "then prune the change log behind the snapshots."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--model", help="model name (default: the active model)")
        parser.add_argument("--dim", type=int, help="its dimension (with --model)")
        parser.add_argument("--match", choices=["template", "sample"], help="default: FACESITE_GALLERY_MATCH")
        parser.add_argument("--no-prune", action="store_true", help="leave the change log as it is")

    def handle(self, *args: Any, **options: Any) -> None:
        from facesite.engine import active_model_spec
        from members.selectors import gallery_settings

        if options["model"] or options["match"]:
            match = options["match"] or gallery_settings()["MATCH"]
            if options["model"] and options["dim"]:  # any stored gallery, described or not
                model_name, dim = options["model"], options["dim"]
            else:
                spec = active_model_spec(options["model"])
                model_name, dim = spec.name, spec.dim
            written = [snapshot_write(model_name=model_name, dim=dim, match=match)]
        else:
            written = snapshots_write_active()
        pruned = 0 if options["no_prune"] else log_prune_behind_snapshots()
        self.stdout.write(json.dumps({"snapshots": [w.as_dict() for w in written], "log_pruned": pruned}, indent=2))
