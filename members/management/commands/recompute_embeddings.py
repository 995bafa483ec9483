"""manage.py recompute_embeddings: move the whole gallery to a model (after FACESITE_MODEL changed)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from faceengine.errors import FacesiteError
from members.models import FaceSample, Member
from members.services import member_recompute_embeddings
from members.tasks import recompute_embeddings_task


class Command(BaseCommand):
    help = (
        "Embed every member's stored faces again with a model (default: the configured FACESITE_MODEL), "
        "as `member_recompute_embeddings` does for one member: the stored landmarks are reused, the "
        "new vectors are written beside the old model's, each template is rebuilt and the outlier "
        "check runs again. Members that already have a vector of the model for every face are skipped "
        "unless --all, so the command can be run again after an interruption."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", default=None, help="Model name (default: the configured FACESITE_MODEL).")
        parser.add_argument("--all", action="store_true", help="Embed again even members already done.")
        parser.add_argument("--queue", action="store_true", help="Queue one task per member instead of running here.")

    def handle(self, *args: Any, **options: Any) -> None:
        from facesite.engine import active_model_spec

        try:
            model = active_model_spec(options["model"]).name
        except FacesiteError as exc:
            raise CommandError(str(exc)) from exc
        if options["all"]:
            members = Member.objects.filter(faces__isnull=False)
        else:  # members with a face that has no vector of the model yet
            missing = FaceSample.objects.exclude(embeddings__model_name=model)
            members = Member.objects.filter(pk__in=missing.values("member_id"))
        ids = list(members.order_by("id").values_list("id", flat=True).distinct())
        if options["queue"]:
            for member_id in ids:
                recompute_embeddings_task.delay(member_id, model_name=model)
            self.stdout.write(f"Queued {len(ids)} member(s) for {model}.")
            return
        embedded = failed = 0
        for member_id in tqdm(ids, disable=None):
            try:
                result = member_recompute_embeddings(member=member_id, model_name=model)
            except FacesiteError as exc:  # a member deleted meanwhile, a model that cannot load
                self.stderr.write(f"member {member_id}: {exc}")
                continue
            embedded += result.embedded
            failed += len(result.failed)
        self.stdout.write(
            f"{model}: {len(ids)} member(s), {embedded} face(s) embedded, "
            f"{failed} face(s) failed (photo missing or unreadable)."
        )
