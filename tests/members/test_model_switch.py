"""Switching the model: the gallery is embedded again with the new one and identification still
works, on real LFW photos with the real engine."""

from __future__ import annotations

import io

import pytest

from faceengine.embedders.registry import SFACE
from faceengine.model_fetch import is_installed
from members import selectors, services
from members.models import Embedding, Template
from tests.fakes import lfw_photos

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

PEOPLE = ("Colin_Powell", "Tony_Blair", "Hugo_Chavez", "Gerhard_Schroeder")


@pytest.fixture
def fresh_engine():
    """get_recognizer caches one recognizer per model name for the process, the configured one
    under ``None``: a process that changes the setting starts without them (as a restarted
    worker does)."""
    from facesite.engine import get_recognizer

    get_recognizer.cache_clear()
    selectors.clear_gallery_cache()
    yield
    get_recognizer.cache_clear()
    selectors.clear_gallery_cache()


@pytest.mark.parametrize("new_model", ["sface", "mobilefacenet_sface"])
def test_switching_the_model_re_embeds_and_identification_still_works(
    settings, lfw_dir, real_recognizer, fresh_engine, new_model, tmp_path
):
    if not is_installed(SFACE, settings.FACESITE_MODEL_DIR):
        pytest.skip(f"SFace is not in {settings.FACESITE_MODEL_DIR}: run `manage.py fetch_models`")
    photos = {name: lfw_photos(lfw_dir, name) for name in PEOPLE}
    members = {name: services.member_create(display_name=name, photos=photos[name][:3]).member for name in PEOPLE}
    assert set(Embedding.objects.values_list("model_name", "dim")) == {("mobilefacenet", 192)}

    settings.FACESITE_ENGINE = {**settings.FACESITE_ENGINE, "MODEL": new_model}
    from facesite.engine import active_model_spec, get_recognizer

    get_recognizer.cache_clear()
    spec = active_model_spec()
    for member in members.values():
        result = services.member_recompute_embeddings(member=member)
        assert (result.model_name, result.embedded, result.failed) == (new_model, 3, [])

    # The new model's vectors sit beside the old ones; each member has a template of each.
    assert set(Embedding.objects.values_list("model_name", "dim")) == {("mobilefacenet", 192), (new_model, spec.dim)}
    assert Template.objects.filter(model_name=new_model, count=3).count() == len(PEOPLE)

    for name, member in members.items():
        (subject, *_) = sorted(
            services.identify_faces(image=photos[name][8]), key=lambda r: -r.box[2] * r.box[3]
        )  # LFW photos may show others too: the biggest face is the subject
        assert subject.label == member.pk, (name, subject.similarity, selectors.identification_threshold())
        assert len(subject.embedding) == spec.dim
    stranger = lfw_photos(lfw_dir, "Aaron_Eckhart")[0]
    (unknown,) = services.identify_faces(image=stranger)
    assert unknown.label is None, unknown.similarity

    # The backup carries the new model's vectors under its name, and takes them back.
    from members.backup import gallery_export, gallery_import

    summary = gallery_export(out=tmp_path / "backup.zip")
    assert summary.models[new_model] == {"dim": spec.dim, "embeddings": 3 * len(PEOPLE), "templates": len(PEOPLE)}
    again = gallery_import(source=tmp_path / "backup.zip")
    assert (again.members_created, again.members_existing) == (0, len(PEOPLE))


def test_switching_the_model_checks_the_faces_again_with_the_new_one(settings, lfw_dir, real_recognizer, fresh_engine):
    """A wrong person's photo flagged by the default model is flagged again by the new model's
    own vectors and threshold, and stays out of the new template."""
    if not is_installed(SFACE, settings.FACESITE_MODEL_DIR):
        pytest.skip(f"SFace is not in {settings.FACESITE_MODEL_DIR}: run `manage.py fetch_models`")
    photos = lfw_photos(lfw_dir, "Colin_Powell")[:4] + lfw_photos(lfw_dir, "Tony_Blair")[:1]
    member = services.member_create(display_name="Colin Powell", photos=photos).member
    intruder = member.faces.order_by("id").last()
    assert (intruder.status, intruder.outlier_model) == ("flagged", "mobilefacenet")

    settings.FACESITE_ENGINE = {**settings.FACESITE_ENGINE, "MODEL": "sface"}
    from facesite.engine import get_recognizer

    get_recognizer.cache_clear()
    services.member_recompute_embeddings(member=member)
    intruder.refresh_from_db()
    assert (intruder.status, intruder.outlier_model) == ("flagged", "sface")
    assert intruder.outlier_similarity < SFACE.verification_threshold
    assert Template.objects.get(member=member, model_name="sface").count == 4


def test_recompute_embeddings_moves_the_whole_gallery_and_resumes(settings, lfw_dir, real_recognizer, fresh_engine):
    from django.core.management import call_command

    if not is_installed(SFACE, settings.FACESITE_MODEL_DIR):
        pytest.skip(f"SFace is not in {settings.FACESITE_MODEL_DIR}: run `manage.py fetch_models`")
    members = [
        services.member_create(display_name=name, photos=lfw_photos(lfw_dir, name)[:2]).member for name in PEOPLE
    ]
    services.member_recompute_embeddings(member=members[0], model_name="sface")  # done before an interruption
    out = io.StringIO()
    call_command("recompute_embeddings", "--model", "sface", stdout=out)
    assert out.getvalue().startswith(f"sface: {len(PEOPLE) - 1} member(s), {2 * (len(PEOPLE) - 1)} face(s) embedded")
    assert Template.objects.filter(model_name="sface", count=2).count() == len(PEOPLE)
    again = io.StringIO()
    call_command("recompute_embeddings", "--model", "sface", stdout=again)
    assert again.getvalue().startswith("sface: 0 member(s)")
