"""Backup and restore of the gallery (members.backup, export_gallery / import_gallery): a round
trip through a flushed database gives the same members, vectors and identification; a damaged
archive is refused with a clear error and changes nothing; importing twice changes nothing."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from members import selectors, services
from members.backup import BackupError, gallery_export, gallery_import
from members.models import AuditEntry, FaceSample, Member, Template
from tests.fakes import FAKE_DIM, FAKE_MODEL, face_photo, lfw_photos, stored_files

pytestmark = pytest.mark.django_db


def snapshot() -> dict:
    """Everything a restore must bring back, keyed by uuid (ids differ on a fresh server)."""
    members = {}
    for member in Member.objects.order_by("id"):
        faces = {}
        for face in FaceSample.objects.filter(member=member).order_by("id"):
            with face.photo.open("rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
            faces[str(face.uuid)] = {
                "sha256": digest,
                "box": face.box,
                "landmarks": face.landmarks,
                "score": face.detection_score,
                "size": (face.image_width, face.image_height),
                "vectors": {e.model_name: e.as_array() for e in face.embeddings.all()},
            }
        members[str(member.uuid)] = {
            "fields": (member.display_name, member.external_id, member.notes, member.is_active),
            "faces": faces,
            "templates": {t.model_name: (t.count, t.as_array()) for t in Template.objects.filter(member=member)},
        }
    return members


def assert_same(before: dict, after: dict) -> None:
    assert before.keys() == after.keys()
    for key, member in before.items():
        restored = after[key]
        assert restored["fields"] == member["fields"]
        assert restored["faces"].keys() == member["faces"].keys()
        for face_key, face in member["faces"].items():
            again = restored["faces"][face_key]
            assert (again["sha256"], again["box"], again["landmarks"], again["score"], again["size"]) == (
                face["sha256"],
                face["box"],
                face["landmarks"],
                face["score"],
                face["size"],
            )
            assert again["vectors"].keys() == face["vectors"].keys()
            for model_name, vector in face["vectors"].items():
                assert np.allclose(again["vectors"][model_name], vector, atol=0, rtol=0)
        assert restored["templates"].keys() == member["templates"].keys()
        for model_name, (count, vector) in member["templates"].items():
            assert restored["templates"][model_name][0] == count
            assert np.allclose(restored["templates"][model_name][1], vector, atol=0, rtol=0)


def flush(media_root: Path) -> None:
    """A fresh server: no members, no photos, no cached index."""
    Member.objects.all().delete()
    AuditEntry.objects.all().delete()
    shutil.rmtree(media_root)
    media_root.mkdir()
    selectors.clear_gallery_cache()


@pytest.fixture
def gallery(fake_engine):
    ada = services.member_create(
        display_name="Ada",
        external_id="A-1",
        notes="first",
        photos=[face_photo("red"), face_photo("red", box=(30, 30, 50, 60))],
    ).member
    bob = services.member_create(display_name="Bob", photos=[face_photo("blue")]).member
    services.member_update(member=bob, is_active=False)
    services.member_create(display_name="Cy")  # no faces
    services.member_recompute_embeddings(member=ada, model_name="fake-second")  # a second model's vectors
    return {"ada": ada, "bob": bob}


def test_round_trip_through_a_flushed_database(gallery, media_root, tmp_path, fake_engine):
    before = snapshot()
    probe = face_photo("red", box=(50, 25, 55, 65))
    (expected,) = services.identify_faces(image=probe, threshold=0.5)  # the fake model has no threshold of its own
    assert expected.label == gallery["ada"].pk
    archive = tmp_path / "backup.zip"
    summary = gallery_export(out=archive)
    assert (summary.members, summary.faces) == (3, 3)
    assert summary.models == {
        FAKE_MODEL: {"dim": FAKE_DIM, "embeddings": 3, "templates": 2},
        "fake-second": {"dim": FAKE_DIM, "embeddings": 2, "templates": 1},
    }

    flush(media_root)
    assert not stored_files(media_root) and not Member.objects.exists()
    result = gallery_import(source=archive)

    assert (result.members_created, result.faces_created, result.embeddings_created, result.templates_written) == (
        3,
        3,
        5,
        3,
    )
    assert_same(before, snapshot())
    # The photos are back under generated names inside MEDIA_ROOT, one file per face.
    names = sorted(f.photo.name for f in FaceSample.objects.all())
    assert sorted(p.relative_to(media_root).as_posix() for p in stored_files(media_root)) == names
    assert all(name.startswith("members/faces/") for name in names)
    # The same identification answer, with the same similarity.
    (again,) = services.identify_faces(image=probe, threshold=0.5)
    ada = Member.objects.get(external_id="A-1")
    assert again.label == ada.pk and again.similarity == pytest.approx(expected.similarity, abs=1e-6)
    # Each restored member has a "restore" entry in the audit log.
    assert set(AuditEntry.objects.values_list("action", flat=True)) == {"restore"}
    assert AuditEntry.objects.count() == 3


def test_importing_twice_changes_nothing(gallery, tmp_path, media_root):
    archive = tmp_path / "backup.zip"
    gallery_export(out=archive)
    before, files = snapshot(), stored_files(media_root)
    again = gallery_import(source=archive)
    assert (again.members_created, again.members_existing, again.faces_created, again.faces_existing) == (0, 3, 0, 3)
    assert_same(before, snapshot())
    assert stored_files(media_root) == files
    assert Member.objects.count() == 3 and FaceSample.objects.count() == 3


def test_a_new_face_in_the_backup_is_added_to_the_existing_member(
    gallery, tmp_path, fake_engine, django_capture_on_commit_callbacks
):
    archive = tmp_path / "backup.zip"
    gallery_export(out=archive)
    ada = gallery["ada"]
    newest = FaceSample.objects.filter(member=ada).order_by("id").last()
    with django_capture_on_commit_callbacks(execute=True):
        services.face_delete(faces=[newest])
    assert Template.objects.get(member=ada, model_name=FAKE_MODEL).count == 1
    result = gallery_import(source=archive)
    assert (result.members_created, result.faces_created) == (0, 1)
    assert FaceSample.objects.filter(member=ada).count() == 2
    assert Template.objects.get(member=ada, model_name=FAKE_MODEL).count == 2  # rebuilt from the embeddings


def test_restore_matches_by_external_id_on_another_server(gallery, tmp_path):
    """A member enrolled separately here with the same external id receives the backup's faces."""
    archive = tmp_path / "backup.zip"
    gallery_export(out=archive)
    Member.objects.all().delete()
    here = services.member_create(display_name="Ada (here)", external_id="A-1").member
    gallery_import(source=archive)
    assert Member.objects.filter(external_id="A-1").count() == 1
    assert FaceSample.objects.filter(member=here).count() == 2


def test_reembed_after_restore_uses_the_active_model(gallery, tmp_path, media_root, fake_engine):
    archive = tmp_path / "backup.zip"
    gallery_export(out=archive)
    flush(media_root)
    result = gallery_import(source=archive, reembed=True)
    assert result.reembedded == 3 and not result.reembed_failed
    ada = Member.objects.get(external_id="A-1")
    assert set(Template.objects.filter(member=ada).values_list("model_name", flat=True)) == {FAKE_MODEL, "fake-second"}
    assert AuditEntry.objects.filter(member_id=ada.pk, action="recompute").count() == 1


# ------------------------------------------------------------------------------- damaged archives


def rewrite(archive: Path, out: Path, change) -> Path:
    """A copy of the archive with ``change(name, data) -> data | None`` applied to each entry."""
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = change(info.filename, source.read(info))
            if data is not None:
                target.writestr(info.filename, data)
    return out


def vectors_npy(dim: int) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ones((3, dim), "<f4"))
    return buffer.getvalue()


def damaged(archive: Path, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    data = archive.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    with zipfile.ZipFile(archive) as source:
        info = next(i for i in source.infolist() if i.filename.startswith("photos/"))
    # A byte in the middle of a stored photo: the zip's CRC no longer matches.
    flipped[info.header_offset + 30 + len(info.filename) + info.extra.__len__() + 100] ^= 0xFF
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(bytes(flipped))
    not_zip = tmp_path / "notes.zip"
    not_zip.write_text("hello")

    def manifest(update):
        def change(name, data):
            if name != "manifest.json":
                return data
            content = json.loads(data)
            update(content)
            return json.dumps(content).encode()

        return change

    def set_dim(content):
        content["models"][FAKE_MODEL]["dim"] = 16

    return {
        "truncated": (truncated, "not a readable zip"),
        "crc": (corrupt, "damaged"),
        "not a zip": (not_zip, "not a readable zip"),
        "no manifest": (
            rewrite(archive, tmp_path / "a.zip", lambda n, d: None if n == "manifest.json" else d),
            "manifest.json is missing",
        ),
        "missing photo": (
            rewrite(archive, tmp_path / "b.zip", lambda n, d: None if n.startswith("photos/") else d),
            "is missing from the archive",
        ),
        "altered photo": (
            rewrite(archive, tmp_path / "c.zip", lambda n, d: face_photo("green") if n.startswith("photos/") else d),
            "does not match its SHA-256",
        ),
        "wrong dim": (rewrite(archive, tmp_path / "d.zip", manifest(set_dim)), "16-d vectors in the backup but 8-d"),
        "wrong rows": (
            rewrite(
                archive,
                tmp_path / "e.zip",
                lambda n, d: vectors_npy(FAKE_DIM) if n == f"vectors/{FAKE_MODEL}/templates.npy" else d,
            ),
            "has 3 rows; the manifest says 2",
        ),
        "bad model name": (
            rewrite(
                archive,
                tmp_path / "f.zip",
                manifest(lambda c: c["models"].update({"../x": c["models"].pop(FAKE_MODEL)})),
            ),
            "not a valid model name",
        ),
    }


def test_a_damaged_archive_is_refused_clearly_and_changes_nothing(gallery, tmp_path, media_root):
    archive = tmp_path / "backup.zip"
    gallery_export(out=archive)
    Member.objects.filter(pk=gallery["bob"].pk).delete()  # so a restore would have something to do
    before, files, entries = snapshot(), stored_files(media_root), AuditEntry.objects.count()
    for case, (path, message) in damaged(archive, tmp_path).items():
        with pytest.raises(BackupError) as caught:
            gallery_import(source=path)
        assert message in caught.value.message and "Nothing was changed" in caught.value.message, case
        assert_same(before, snapshot())
        assert stored_files(media_root) == files, case
        assert AuditEntry.objects.count() == entries, case
    assert gallery_import(source=archive).members_created == 1  # the intact archive still restores


def test_a_failure_while_writing_rolls_back_rows_and_files(gallery, tmp_path, media_root, monkeypatch):
    archive = tmp_path / "backup.zip"
    gallery_export(out=archive)
    flush(media_root)

    def fail(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("members.backup.audit_record", fail)  # fails inside the transaction
    with pytest.raises(RuntimeError):
        gallery_import(source=archive)
    assert not Member.objects.exists() and not FaceSample.objects.exists()
    assert not stored_files(media_root)


# ------------------------------------------------------------------------------- commands


def test_commands_export_check_and_import(gallery, tmp_path, media_root):
    archive = tmp_path / "gallery.zip"
    out = io.StringIO()
    call_command("export_gallery", str(archive), stdout=out)
    assert "Exported 3 member(s) and 3 face photo(s)" in out.getvalue() and f"{FAKE_MODEL} (8-d" in out.getvalue()
    before = snapshot()
    flush(media_root)
    out = io.StringIO()
    call_command("import_gallery", str(archive), "--check", stdout=out)
    assert "is valid: 3 member(s), 3 face(s)" in out.getvalue() and not Member.objects.exists()
    out = io.StringIO()
    call_command("import_gallery", str(archive), "--json", str(tmp_path / "counts.json"), stdout=out)
    assert "Members created: 3, already here: 0. Faces created: 3" in out.getvalue()
    assert json.loads((tmp_path / "counts.json").read_text())["faces_created"] == 3
    assert_same(before, snapshot())
    truncated = tmp_path / "half.zip"
    truncated.write_bytes(archive.read_bytes()[:1000])
    with pytest.raises(CommandError, match="not a readable zip"):
        call_command("import_gallery", str(truncated))


# ------------------------------------------------------------------------------- the real engine


@pytest.mark.slow
def test_real_faces_identify_the_same_after_a_restore(lfw_dir, real_recognizer, tmp_path, media_root):
    people = {name: lfw_photos(lfw_dir, name) for name in ("Colin_Powell", "Tony_Blair")}
    for name, photos in people.items():
        services.member_create(display_name=name, external_id=name, photos=photos[:3])
    probes = [people["Colin_Powell"][10], people["Tony_Blair"][10]]

    def answers():
        selectors.clear_gallery_cache()
        found = []
        for probe in probes:
            subject = max(services.identify_faces(image=probe), key=lambda r: r.box[2] * r.box[3])
            found.append((Member.objects.get(pk=subject.label).external_id, round(subject.similarity, 5)))
        return found

    expected, before = answers(), snapshot()
    assert [name for name, _ in expected] == ["Colin_Powell", "Tony_Blair"]
    archive = tmp_path / "backup.zip"
    gallery_export(out=archive)
    flush(media_root)
    gallery_import(source=archive)
    assert_same(before, snapshot())
    assert answers() == expected
