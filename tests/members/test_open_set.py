"""The 1:N threshold calibrated for the gallery's size: selectors, the job record, the members
page, the API, and ``calibrate_model`` on real photos."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse

from faceengine.calibration import calibration_path, load_calibration
from faceengine.embedders.registry import DEFAULT_MODEL, save_model_spec
from members import selectors, services
from members.models import Member, Template

pytestmark = pytest.mark.django_db


def add_templates(count: int, *, active: bool = True, model: str = DEFAULT_MODEL.name, dim: int = DEFAULT_MODEL.dim):
    rng = np.random.default_rng(count)
    for i in range(count):
        member = Member.objects.create(display_name=f"m{i}", is_active=active)
        vector = rng.normal(size=dim).astype(np.float32)
        Template.objects.create(member=member, model_name=model, dim=dim, vector=vector.tobytes(), count=1)


def test_the_calibrated_threshold_rises_with_the_gallery_size():
    bars = [selectors.identification_bar(gallery_size=n) for n in (1, 5, 50, 500, 5000, 500_000)]
    thresholds = [bar.threshold for bar in bars]
    assert thresholds == sorted(thresholds) and len(set(thresholds)) == len(thresholds)
    assert {bar.basis for bar in bars} == {"calibrated"}
    for bar in bars:  # each meets the target of the settings, by the calibration's own estimate
        assert bar.false_accept_rate == pytest.approx(0.01, rel=0.02)
        assert bar.target_false_accept_rate == 0.01


def test_the_gallery_size_counts_the_active_members_of_the_model():
    add_templates(7)
    add_templates(3, active=False)
    add_templates(4, model="another", dim=16)
    bar = selectors.identification_bar()
    assert bar.gallery_size == 7
    assert bar.threshold == pytest.approx(selectors.identification_bar(gallery_size=7).threshold)


def test_a_stricter_target_raises_the_threshold(settings):
    loose = selectors.identification_bar(gallery_size=100).threshold
    settings.FACESITE_GALLERY = {**settings.FACESITE_GALLERY, "FALSE_ACCEPT_RATE": 0.001}
    strict = selectors.identification_bar(gallery_size=100)
    assert strict.threshold > loose and strict.false_accept_rate == pytest.approx(0.001, rel=0.02)


def test_the_explicit_threshold_setting_still_wins(settings):
    settings.FACESITE_GALLERY = {**settings.FACESITE_GALLERY, "IDENTIFICATION_THRESHOLD": 0.7}
    small, large = (selectors.identification_bar(gallery_size=n) for n in (5, 5000))
    assert small.threshold == large.threshold == 0.7 and small.basis == "setting"
    assert small.false_accept_rate < large.false_accept_rate  # still estimated, for the page


def test_a_model_without_a_calibration_keeps_its_fixed_threshold(settings, tmp_path):
    settings.FACESITE_MODEL_DIR = tmp_path
    save_model_spec(
        type(DEFAULT_MODEL)(
            name="users-model", backend="onnx", filename="m.onnx", dim=64, identification_threshold=0.61
        ),
        tmp_path,
    )
    bar = selectors.identification_bar(model_name="users-model", gallery_size=1000)
    assert (bar.threshold, bar.basis, bar.false_accept_rate) == (0.61, "model", None)


def test_a_calibration_of_another_dimension_is_never_used(settings, tmp_path):
    settings.FACESITE_MODEL_DIR = tmp_path
    builtin = load_calibration(DEFAULT_MODEL.name)
    assert builtin is not None
    data = builtin.to_dict()
    data["dim"] = 64
    calibration_path(tmp_path, DEFAULT_MODEL.name).write_text(json.dumps(data))
    bar = selectors.identification_bar(gallery_size=10)
    assert bar.basis == "model" and bar.threshold == DEFAULT_MODEL.identification_threshold


def test_the_members_page_shows_the_threshold_in_use(client, django_user_model):
    add_templates(12)
    staff = django_user_model.objects.create_user("staff", password="pw-staff-1", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_member"))
    client.force_login(staff)
    page = client.get(reverse("member-list")).content.decode()
    bar = selectors.identification_bar()
    assert 'id="identification-bar"' in page
    assert f"{bar.threshold:.3f}" in page and "12 members searched" in page
    assert "calibrated for this gallery size" in page


# --------------------------------------------------------------------------------- real photos


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("uploader", password="pw-uploader-1")


@pytest.fixture
def lfw_people(lfw_dir):
    """Three LFW people to enrol (5 photos each, the rest to recognise) and strangers."""
    names = ("Colin_Powell", "Tony_Blair", "Hugo_Chavez")
    return {name: sorted((lfw_dir / name).glob("*.jpg")) for name in names}


def run_job(user, path):
    """Queue a job for a photo and run the worker's body on it (the queue runs at the commit,
    which a test's transaction never reaches)."""
    from django.core.files.base import ContentFile

    from recognition import selectors as job_selectors
    from recognition import services as job_services

    job = job_services.job_create(user=user, upload=ContentFile(path.read_bytes(), name=path.name))
    assert job_services.job_run(job_id=job.pk).state == "done"
    job.refresh_from_db()
    return job_selectors.job_result(job=job)


def test_a_job_records_the_threshold_it_was_judged_by(lfw_people, lfw_dir, real_recognizer, user):
    members = {}
    for name, photos in lfw_people.items():
        members[name] = services.member_create(display_name=name, photos=photos[:5]).member.pk
    result = run_job(user, lfw_people["Tony_Blair"][7])
    (face,) = result["faces"]
    assert face["member_id"] == members["Tony_Blair"]
    bar = result["identification"]
    assert bar["gallery_size"] == 3 and bar["basis"] == "calibrated"
    assert bar["threshold"] == pytest.approx(selectors.identification_bar(gallery_size=3).threshold, abs=1e-4)
    # A gallery of three can afford a lower bar than the model's one-size threshold.
    assert bar["threshold"] < DEFAULT_MODEL.identification_threshold
    assert face["similarity"] >= bar["threshold"]
    stranger = next(p for p in sorted((lfw_dir / "Aaron_Eckhart").glob("*.jpg")))
    (face,) = run_job(user, stranger)["faces"]
    assert face["member_id"] is None


def test_calibrate_model_measures_a_users_labelled_folder(lfw_dir, real_recognizer, settings, tmp_path, capsys):
    """A folder per person (links to LFW photos): the calibration is written beside the model and
    decides the threshold from then on."""
    models = tmp_path / "models"  # the same weights, a folder of its own for the calibration
    models.mkdir()
    for item in settings.FACESITE_MODEL_DIR.iterdir():
        (models / item.name).symlink_to(item)
    settings.FACESITE_MODEL_DIR = models
    people = tmp_path / "people"
    chosen = ["Colin_Powell", "Tony_Blair", "Hugo_Chavez", "Jean_Chretien", "Aaron_Eckhart", "Abba_Eban"]
    for name in chosen:
        (people / name).mkdir(parents=True)
        for photo in sorted((lfw_dir / name).glob("*.jpg"))[:4]:
            (people / name / photo.name).symlink_to(photo)
    call_command("calibrate_model", str(people))
    written = calibration_path(settings.FACESITE_MODEL_DIR, DEFAULT_MODEL.name)
    assert written.is_file()
    mine = load_calibration(DEFAULT_MODEL.name, settings.FACESITE_MODEL_DIR)
    assert mine is not None and mine.source["people"] == 6 and mine.source["data"] == "people"
    assert "1:N threshold" in capsys.readouterr().out
    bar = selectors.identification_bar(gallery_size=10)
    assert bar.basis == "calibrated"
    assert bar.threshold == pytest.approx(mine.threshold(10, 0.01))
    # A few hundred impostor pairs of six people: much less sure than LFW's millions, so its
    # counted tail ends early and its threshold differs from the built-in one.
    assert bar.threshold != pytest.approx(builtin_threshold(10), abs=1e-6)


def builtin_threshold(size: int) -> float:
    builtin = load_calibration(DEFAULT_MODEL.name)
    assert builtin is not None
    return builtin.threshold(size, 0.01)
