"""The services with the real engine (MTCNN + the default model) on real LFW photos."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from django.core.management import call_command

from members import selectors, services
from members.models import Embedding, FaceSample, Member, Template
from members.tasks import enroll_folder_task
from tests.fakes import lfw_photos, stored_files

pytestmark = pytest.mark.django_db


def grey_png(size=(200, 200)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (128, 128, 128)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def people(lfw_dir, real_recognizer):
    names = ("Colin_Powell", "Tony_Blair", "Hugo_Chavez")
    return {name: lfw_photos(lfw_dir, name) for name in names}


def test_enrol_and_identify_real_faces(people, lfw_dir):
    members = {
        name: services.member_create(display_name=name, photos=photos[:3]).member for name, photos in people.items()
    }
    for name, member in members.items():
        face = FaceSample.objects.filter(member=member).first()
        assert 40 < face.box_w < 200 and face.detection_score > 0.9
        assert Template.objects.get(member=member).count == 3
        results = services.identify_faces(image=people[name][10])
        subject = max(results, key=lambda r: r.box[2] * r.box[3])  # LFW photos may show others too
        assert subject.label == member.pk, (name, subject.similarity)
        assert subject.similarity >= selectors.identification_threshold()
        assert subject.margin > 0
    stranger = lfw_photos(lfw_dir, "Aaron_Eckhart")[0]
    (unknown,) = services.identify_faces(image=stranger)
    assert unknown.label is None and unknown.similarity < selectors.identification_threshold()
    assert len(unknown.candidates) == 3  # still says who came closest


def test_deleting_a_member_removes_rows_files_and_index_entries(people, media_root, django_capture_on_commit_callbacks):
    powell = services.member_create(display_name="Colin Powell", photos=people["Colin_Powell"][:4]).member
    blair = services.member_create(display_name="Tony Blair", photos=people["Tony_Blair"][:4]).member
    probe = people["Colin_Powell"][12]
    (before,) = services.identify_faces(image=probe)
    assert before.label == powell.pk
    powell_files = [media_root / f.photo.name for f in FaceSample.objects.filter(member=powell)]
    assert len(powell_files) == 4 and all(p.is_file() for p in powell_files)

    with django_capture_on_commit_callbacks(execute=True):
        services.member_delete(member=powell)

    assert not Member.objects.filter(pk=powell.pk).exists()
    assert not FaceSample.objects.filter(member_id=powell.pk).exists()
    assert not Embedding.objects.filter(face__member_id=powell.pk).exists()
    assert not Template.objects.filter(member_id=powell.pk).exists()
    assert not any(p.exists() for p in powell_files)
    assert len(stored_files(media_root)) == 4  # Blair's photos only
    for match in ("template", "sample"):
        (after,) = services.identify_faces(image=probe, threshold=-1.0, match=match)
        assert after.label == blair.pk  # with no threshold at all, the only one left
        assert powell.pk not in [c.label for c in after.candidates]
    (after,) = services.identify_faces(image=probe)
    assert after.label != powell.pk


def test_a_photo_without_a_face_is_reported(people):
    result = services.member_create(display_name="Tony", photos=[people["Tony_Blair"][0], grey_png()])
    assert [(o.ok, o.code) for o in result.outcomes] == [(True, None), (False, "no_face")]
    assert result.outcomes[0].faces_found >= 1 and result.outcomes[1].faces_found == 0


def make_people_folder(root, people) -> None:
    for name in ("Colin_Powell", "Tony_Blair"):
        folder = root / name
        folder.mkdir(parents=True)
        for photo in people[name][:2]:
            shutil.copy(photo, folder / photo.name)
    (root / "Colin_Powell" / "notes.txt").write_text("not a photo")
    (root / "Colin_Powell" / "wall.png").write_bytes(grey_png())
    (root / "Colin_Powell" / ".DS_Store").write_bytes(b"\0")
    shutil.copy(people["Hugo_Chavez"][0], root / "stray.jpg")
    (root / "Empty_Person").mkdir()
    (root / "Nobody").mkdir()
    (root / "Nobody" / "wall.png").write_bytes(grey_png())


def test_enroll_folder_command_enrols_reports_and_resumes(people, tmp_path):
    root = tmp_path / "people"
    make_people_folder(root, people)
    out = io.StringIO()
    call_command("enroll_folder", str(root), "--no-progress", "--json", str(tmp_path / "s.json"), stdout=out)
    text = out.getvalue()
    assert "Members created: 2" in text and "without a usable photo: 1" in text
    assert "Photos added: 4, skipped: 5" in text
    assert "Colin_Powell/notes.txt: unsupported_image_type" in text
    assert "Colin_Powell/wall.png: no_face" in text
    assert "stray.jpg: not_in_person_folder" in text
    assert "Nobody/wall.png: no_face" in text and "Empty_Person/: empty_folder" in text
    powell = Member.objects.get(external_id="Colin_Powell")
    assert powell.display_name == "Colin Powell" and powell.faces.count() == 2
    assert Template.objects.get(member__external_id="Tony_Blair").count == 2
    assert not Member.objects.filter(external_id="Nobody").exists()
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["reasons"] == {
        "unsupported_image_type": 1,
        "no_face": 2,
        "not_in_person_folder": 1,
        "empty_folder": 1,
    }

    out = io.StringIO()
    call_command("enroll_folder", str(root), "--no-progress", stdout=out)
    assert "Members created: 0" in out.getvalue() and "already enrolled (skipped): 2" in out.getvalue()
    assert Member.objects.count() == 2 and FaceSample.objects.count() == 4


def test_enroll_folder_task_runs_the_same_service(people, tmp_path, eager_celery):
    root = tmp_path / "people"
    make_people_folder(root, people)
    summary = enroll_folder_task.delay(str(root)).get()
    assert (summary["members_created"], summary["photos_added"]) == (2, 4)
    summary = enroll_folder_task.delay(str(root), "add").get()
    assert (summary["members_updated"], summary["photos_added"]) == (2, 4)
    assert Template.objects.get(member__external_id="Colin_Powell").count == 4
    json.dumps(summary)  # a Celery result must be JSON


def test_enroll_folder_refuses_what_is_not_a_folder(tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="not a folder"):
        call_command("enroll_folder", str(tmp_path / "missing"), "--no-progress")


def test_recompute_embeddings_reproduces_the_enrolment_vectors(people):
    member = services.member_create(display_name="Tony", photos=people["Tony_Blair"][:2]).member
    before = {e.face_id: e.as_array() for e in Embedding.objects.filter(face__member=member)}
    template_before = Template.objects.get(member=member).as_array()
    result = services.member_recompute_embeddings(member=member)
    assert (result.embedded, result.failed) == (2, [])
    for embedding in Embedding.objects.filter(face__member=member):
        np.testing.assert_allclose(embedding.as_array(), before[embedding.face_id], atol=1e-5)
    np.testing.assert_allclose(Template.objects.get(member=member).as_array(), template_before, atol=1e-5)
