"""manage.py recognize and manage.py evaluate on real photos."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import lfw_subset, model_dir, require_file

FR = "samples/face_recognition/examples"


@pytest.fixture(autouse=True)
def _real_model(settings, default_embedder):
    # The command builds its recognizer from settings: point it at the fetched model.
    settings.FACESITE_MODEL_DIR = model_dir()


@pytest.mark.django_db
def test_recognize_json_lists_every_face_and_reports_bad_files(tmp_path):
    group = require_file(f"{FR}/knn_examples/test/obama_and_biden.jpg")
    junk = tmp_path / "notes.jpg"
    junk.write_text("not a photo")
    out = io.StringIO()
    call_command("recognize", str(group), str(junk), "--json", stdout=out)
    results = json.loads(out.getvalue())
    assert [r["image"] for r in results] == [str(group), str(junk)]
    good, bad = results
    assert good["error"] is None and len(good["faces"]) == 3
    for face in good["faces"]:
        assert len(face["box"]) == 4 and len(face["landmarks"]) == 5 and face["score"] >= 0.9
        assert face["member"] is None  # nobody is enrolled
    assert bad["faces"] == [] and "not an image" in bad["error"]


@pytest.mark.django_db
def test_recognize_names_enrolled_members(settings, tmp_path):
    from members.selectors import clear_gallery_cache
    from members.services import member_create

    settings.MEDIA_ROOT = tmp_path / "media"
    clear_gallery_cache()
    train = f"{FR}/knn_examples/train"
    member_create(display_name="Barack Obama", photos=[require_file(f"{train}/obama/obama.jpg")])
    member_create(display_name="Joe Biden", photos=[require_file(f"{train}/biden/biden2.jpg")])
    out = io.StringIO()
    call_command("recognize", str(require_file(f"{FR}/knn_examples/test/obama_and_biden.jpg")), "--json", stdout=out)
    faces = sorted(json.loads(out.getvalue())[0]["faces"], key=lambda f: f["box"][0])
    assert [f["member"] for f in faces] == ["Joe Biden", "Barack Obama", None]
    assert all(f["similarity"] is not None for f in faces)
    assert faces[0]["similarity"] > faces[2]["similarity"]
    clear_gallery_cache()


@pytest.mark.django_db
def test_recognize_fails_when_no_image_is_readable(tmp_path):
    junk = tmp_path / "x.png"
    junk.write_bytes(b"")
    with pytest.raises(CommandError, match="No image could be read"):
        call_command("recognize", str(junk), stdout=io.StringIO())


@pytest.mark.slow
def test_evaluate_on_a_real_lfw_subset(tmp_path):
    data = lfw_subset(tmp_path)
    report = tmp_path / "report.json"
    out = io.StringIO()
    call_command(
        "evaluate",
        "--benchmark",
        "lfw",
        "--data",
        str(data),
        "--flip",
        "--json",
        str(report),
        "--no-progress",
        stdout=out,
    )
    result = json.loads(report.read_text())["lfw"]
    assert set(result) >= {"accuracy", "std", "threshold", "auc", "tar_at_far_1e-3", "pairs", "fallbacks"}
    assert result["pairs"] == 60
    assert result["accuracy"] >= 0.95 and result["auc"] >= 0.97
    assert 0.1 < result["threshold"] < 0.7
    assert result["fallbacks"] == 0
    assert "| mobilefacenet +flip | " in out.getvalue()


def test_evaluate_rejects_a_missing_folder(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("evaluate", "--benchmark", "lfw", "--data", str(tmp_path / "none"))
