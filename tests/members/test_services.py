"""The member services on the fake engine: rows, files, templates, outcomes and errors."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from members import errors, selectors, services
from members.models import Embedding, FaceSample, GalleryVersion, Member, Template
from tests.fakes import FAKE_DIM, FAKE_MODEL, draw_photo, face_photo, make_fake_recognizer, stored_files

pytestmark = pytest.mark.django_db


def embed(colour: str) -> np.ndarray:
    """What the fake engine gives for a one-face photo of that colour."""
    recognizer = make_fake_recognizer()
    rgb = recognizer.load(face_photo(colour))
    faces = recognizer.detector.detect(rgb)
    return recognizer.embed_faces(rgb, faces)[0]


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def test_member_create_stores_faces_embeddings_template_and_files(fake_engine, media_root):
    result = services.member_create(
        display_name="  Ada Lovelace ", external_id="A-1", notes="n", photos=[face_photo("red"), face_photo("orange")]
    )
    member = result.member
    assert Member.objects.get(pk=member.pk).display_name == "Ada Lovelace"
    assert [o.ok for o in result.outcomes] == [True, True]
    faces = list(FaceSample.objects.filter(member=member).order_by("id"))
    assert [f.pk for f in faces] == [o.face_id for o in result.outcomes]
    assert faces[0].box == (40.0, 20.0, 60.0, 70.0)
    assert (faces[0].image_width, faces[0].image_height) == (160, 120)
    assert len(faces[0].landmarks) == 5 and faces[0].detection_score == pytest.approx(0.99)

    embeddings = Embedding.objects.filter(face__member=member)
    assert {(e.model_name, e.dim) for e in embeddings} == {(FAKE_MODEL, FAKE_DIM)}
    template = Template.objects.get(member=member, model_name=FAKE_MODEL)
    assert template.count == 2 and result.template_count == 2
    expected = (unit(embed("red")) + unit(embed("orange"))) / 2
    np.testing.assert_allclose(template.as_array(), expected, atol=1e-6)

    files = stored_files(media_root)
    assert len(files) == 2
    assert {f.relative_to(media_root).as_posix() for f in files} == {f.photo.name for f in faces}
    assert all(f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in files)


def test_stored_names_are_generated_never_the_uploaded_name(fake_engine, media_root):
    evil = SimpleUploadedFile("../../../etc/passwd.jpg", face_photo("blue"), content_type="image/jpeg")
    result = services.member_create(display_name="Eve", photos=[evil, ("..\\x.png", face_photo("red"))])
    assert result.outcomes[0].name == "passwd.jpg"  # reported by its base name only
    for face in FaceSample.objects.filter(member=result.member):
        assert face.photo.name.startswith("members/faces/")
        assert ".." not in face.photo.name and "passwd" not in face.photo.name and "x.png" not in face.photo.name
        assert face.photo.name.endswith(".png")  # the extension follows the sniffed format
    assert all(media_root in p.parents for p in stored_files(media_root))
    assert len(stored_files(media_root)) == 2


def test_the_largest_face_of_a_photo_is_enrolled(fake_engine):
    photo = draw_photo([("blue", (5, 5, 20, 20)), ("green", (60, 30, 70, 80)), ("red", (130, 5, 25, 25))])
    result = services.member_create(display_name="Group", photos=[photo])
    assert result.outcomes[0].faces_found == 3
    face = FaceSample.objects.get(member=result.member)
    assert face.box == (60.0, 30.0, 70.0, 80.0)
    np.testing.assert_allclose(face.embeddings.get().as_array(), embed("green"), atol=1e-6)


def test_photos_without_a_face_or_unreadable_are_reported_not_dropped(fake_engine, media_root):
    photos = [face_photo("red"), draw_photo([]), b"not an image at all", ("big.txt", b"")]
    result = services.member_create(display_name="Mixed", photos=photos)
    codes = [(o.ok, o.code) for o in result.outcomes]
    assert codes == [(True, None), (False, "no_face"), (False, "unsupported_image_type"), (False, "invalid_image")]
    assert result.outcomes[1].message and result.outcomes[2].message
    assert [o.name for o in result.failed] == ["photo 2", "photo 3", "big.txt"]
    assert FaceSample.objects.filter(member=result.member).count() == 1
    assert len(stored_files(media_root)) == 1


def test_an_oversized_photo_is_refused_before_decoding(fake_engine, settings, tmp_path):
    settings.FACESITE_MAX_UPLOAD_BYTES = 100
    path = tmp_path / "large.png"
    path.write_bytes(face_photo("red"))
    with pytest.raises(errors.InvalidImage) as caught:
        services.member_create(display_name="Big", photos=[path])
    assert caught.value.outcomes[0].code == "image_too_large"


def test_no_usable_photo_creates_nothing_and_raises_with_a_code(fake_engine, media_root):
    with pytest.raises(errors.NoFace) as caught:
        services.member_create(display_name="Nobody", photos=[draw_photo([]), b"junk"])
    assert caught.value.code == "no_face"
    assert [o.code for o in caught.value.outcomes] == ["no_face", "unsupported_image_type"]
    assert caught.value.as_dict()["details"]["photos"][0]["code"] == "no_face"
    with pytest.raises(errors.InvalidImage) as caught:
        services.member_create(display_name="Nobody", photos=[b"junk"])
    assert caught.value.code == "invalid_image"
    assert not Member.objects.exists() and stored_files(media_root) == []


def test_duplicate_external_id_and_empty_name_are_refused(fake_engine):
    services.member_create(display_name="First", external_id="X")
    with pytest.raises(errors.DuplicateExternalId) as caught:
        services.member_create(display_name="Second", external_id="X", photos=[face_photo("red")])
    assert caught.value.code == "duplicate_external_id"
    with pytest.raises(errors.InvalidInput):
        services.member_create(display_name="   ")
    # A blank external id is no id: many members may have none.
    services.member_create(display_name="A", external_id="")
    services.member_create(display_name="B", external_id=None)
    assert Member.objects.filter(external_id__isnull=True).count() == 2


def test_member_add_faces_average_folds_into_the_template(fake_engine):
    member = services.member_create(display_name="M", photos=[face_photo("red")]).member
    result = services.member_add_faces(member=member, photos=[face_photo("blue"), face_photo("green")])
    assert result.template_count == 3
    template = Template.objects.get(member=member)
    expected = (unit(embed("red")) + unit(embed("blue")) + unit(embed("green"))) / 3
    np.testing.assert_allclose(template.as_array(), expected, atol=1e-6)
    assert FaceSample.objects.filter(member=member).count() == 3
    # by id, too
    services.member_add_faces(member=member.pk, photos=[face_photo("red")])
    assert Template.objects.get(member=member).count == 4


def test_member_add_faces_replace_drops_old_faces_files_and_template(
    fake_engine, media_root, django_capture_on_commit_callbacks
):
    member = services.member_create(display_name="M", photos=[face_photo("red"), face_photo("blue")]).member
    old_files = stored_files(media_root)
    old_faces = set(FaceSample.objects.filter(member=member).values_list("id", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        result = services.member_add_faces(member=member, photos=[face_photo("green")], mode="replace")
    faces = list(FaceSample.objects.filter(member=member))
    assert len(faces) == 1 and faces[0].pk not in old_faces
    assert Embedding.objects.filter(face__member=member).count() == 1
    template = Template.objects.get(member=member)
    assert template.count == 1 and result.template_count == 1
    np.testing.assert_allclose(template.as_array(), unit(embed("green")), atol=1e-6)
    assert not any(p.exists() for p in old_files)
    assert len(stored_files(media_root)) == 1


def test_replace_with_no_usable_photo_changes_nothing(fake_engine, media_root):
    member = services.member_create(display_name="M", photos=[face_photo("red")]).member
    before = stored_files(media_root)
    with pytest.raises(errors.NoFace):
        services.member_add_faces(member=member, photos=[draw_photo([])], mode="replace")
    assert FaceSample.objects.filter(member=member).count() == 1
    assert Template.objects.get(member=member).count == 1
    assert stored_files(media_root) == before


def test_member_add_faces_errors(fake_engine):
    member = services.member_create(display_name="M").member
    with pytest.raises(errors.InvalidInput):
        services.member_add_faces(member=member, photos=[face_photo("red")], mode="median")
    with pytest.raises(errors.InvalidInput):
        services.member_add_faces(member=member, photos=[])
    with pytest.raises(errors.MemberNotFound) as caught:
        services.member_add_faces(member=member.pk + 1000, photos=[face_photo("red")])
    assert caught.value.code == "member_not_found"
    with pytest.raises(errors.MemberNotFound):
        services.member_delete(member=member.pk + 1000)


def test_member_delete_leaves_no_row_no_file_no_index_entry(
    fake_engine, media_root, django_capture_on_commit_callbacks
):
    keep = services.member_create(display_name="Keep", photos=[face_photo("blue")]).member
    gone = services.member_create(display_name="Gone", photos=[face_photo("red"), face_photo("orange")]).member
    gone_files = [media_root / f.photo.name for f in FaceSample.objects.filter(member=gone)]
    query = unit(embed("red"))[None]
    gallery = selectors.gallery_for_model(model_name=FAKE_MODEL, dim=FAKE_DIM)
    assert gallery.search(query, k=1)[0][0].label == gone.pk  # cached in this process

    with django_capture_on_commit_callbacks(execute=True):
        services.del_customs(member=gone)

    assert not Member.objects.filter(pk=gone.pk).exists()
    assert not FaceSample.objects.filter(member_id=gone.pk).exists()
    assert not Embedding.objects.filter(face__member_id=gone.pk).exists()
    assert not Template.objects.filter(member_id=gone.pk).exists()
    assert not any(p.exists() for p in gone_files)
    assert len(stored_files(media_root)) == 1
    for match in ("template", "sample"):
        gallery = selectors.gallery_for_model(model_name=FAKE_MODEL, dim=FAKE_DIM, match=match)
        assert gone.pk not in gallery.labels
        assert [m.label for m in gallery.search(query, k=5)[0]] == [keep.pk]


def test_files_stay_when_the_deleting_transaction_rolls_back(fake_engine, media_root):
    from django.db import transaction

    member = services.member_create(display_name="M", photos=[face_photo("red")]).member
    files = stored_files(media_root)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.member_delete(member=member)
        raise RuntimeError("the caller's transaction fails")
    assert Member.objects.filter(pk=member.pk).exists()
    assert all(p.exists() for p in files)


def test_face_delete_recomputes_the_template(fake_engine, media_root, django_capture_on_commit_callbacks):
    member = services.member_create(
        display_name="M", photos=[face_photo("red"), face_photo("blue"), face_photo("green")]
    ).member
    red, blue, green = FaceSample.objects.filter(member=member).order_by("id")
    with django_capture_on_commit_callbacks(execute=True):
        assert services.face_delete(faces=[blue]) == 1
    template = Template.objects.get(member=member)
    assert template.count == 2
    np.testing.assert_allclose(template.as_array(), (unit(embed("red")) + unit(embed("green"))) / 2, atol=1e-6)
    assert not (media_root / blue.photo.name).exists() and (media_root / red.photo.name).exists()
    with django_capture_on_commit_callbacks(execute=True):
        services.face_delete(faces=[red.pk, green.pk])
    assert not Template.objects.filter(member=member).exists()
    assert stored_files(media_root) == []


def test_member_update_and_deactivation_leave_the_gallery(fake_engine):
    member = services.member_create(display_name="M", photos=[face_photo("red")]).member
    token = selectors.gallery_version()
    updated = services.member_update(member=member, display_name="Renamed", notes="x")
    assert Member.objects.get(pk=member.pk).display_name == "Renamed" and updated.notes == "x"
    assert selectors.gallery_version() == token  # a name is not in the index
    services.member_update(member=member, is_active=False)
    assert selectors.gallery_version() != token
    assert len(selectors.gallery_for_model(model_name=FAKE_MODEL, dim=FAKE_DIM)) == 0
    services.member_update(member=member, is_active=True)
    assert selectors.gallery_for_model(model_name=FAKE_MODEL, dim=FAKE_DIM).labels == [member.pk]
    services.member_create(display_name="O", external_id="E")
    with pytest.raises(errors.DuplicateExternalId):
        services.member_update(member=member, external_id="E")


def test_recompute_embeddings_adds_the_new_models_vectors_and_template(fake_engine):
    member = services.member_create(display_name="M", photos=[face_photo("red"), face_photo("blue")]).member
    result = services.member_recompute_embeddings(member=member, model_name="other-model")
    assert (result.embedded, result.failed, result.template_count) == (2, [], 2)
    assert set(Embedding.objects.filter(face__member=member).values_list("model_name", flat=True)) == {
        FAKE_MODEL,
        "other-model",
    }
    other = fake_engine("other-model")
    expected = []
    for colour in ("red", "blue"):
        rgb = other.load(face_photo(colour))
        expected.append(other.embed_faces(rgb, other.detector.detect(rgb))[0])
    np.testing.assert_allclose(
        Template.objects.get(member=member, model_name="other-model").as_array(),
        (expected[0] + expected[1]) / 2,
        atol=1e-5,
    )
    # Recomputing again replaces, never duplicates.
    services.member_recompute_embeddings(member=member, model_name="other-model")
    assert Embedding.objects.filter(face__member=member, model_name="other-model").count() == 2


def test_every_change_of_the_gallery_changes_the_version_token(fake_engine):
    tokens = [selectors.gallery_version()]
    member = services.member_create(display_name="M", photos=[face_photo("red")]).member
    tokens.append(selectors.gallery_version())
    services.member_add_faces(member=member, photos=[face_photo("blue")])
    tokens.append(selectors.gallery_version())
    services.face_delete(faces=FaceSample.objects.filter(member=member)[:1])
    tokens.append(selectors.gallery_version())
    services.member_delete(member=member)
    tokens.append(selectors.gallery_version())
    assert len(set(tokens)) == len(tokens)
    assert GalleryVersion.objects.count() == 1


def test_old_names_are_thin_aliases(fake_engine):
    result = services.add_customs(display_name="Old", photos=[face_photo("red")])
    services.add_embds(member=result.member, photos=[face_photo("blue")])
    assert Template.objects.get(member=result.member).count == 2
    services.update_customs(member=result.member, photos=[face_photo("green")])
    assert Template.objects.get(member=result.member).count == 1
    services.del_customs(member=result.member)
    assert not Member.objects.exists()
    with pytest.raises(TypeError):
        services.member_create("positional", [])  # keyword-only


def test_identify_faces_names_members_and_says_unknown(fake_engine):
    red = services.member_create(display_name="Red", photos=[face_photo("red")]).member
    services.member_create(display_name="Blue", photos=[face_photo("blue")])
    photo = draw_photo([("red", (5, 5, 60, 70)), ("green", (90, 20, 60, 70))])
    results = services.identify_faces(image=photo, threshold=0.99)
    assert len(results) == 2
    by_box = {r.box[0]: r for r in results}
    assert by_box[5.0].label == red.pk and by_box[5.0].similarity == pytest.approx(1.0, abs=1e-5)
    assert by_box[5.0].margin is not None and by_box[5.0].margin > 0
    assert by_box[90.0].label is None and by_box[90.0].similarity < 0.99  # green: a stranger
    assert selectors.member_names([r.label for r in results]) == {red.pk: "Red"}


def test_enroll_folder_queued_as_a_task_and_bad_arguments(fake_engine, eager_celery, tmp_path):
    import io

    from django.core.management import call_command

    root = tmp_path / "people"
    for name, colours in {"Ada_Lovelace": ["red", "orange"], "Alan_Turing": ["blue"]}.items():
        (root / name).mkdir(parents=True)
        for i, colour in enumerate(colours):
            (root / name / f"{i}.png").write_bytes(face_photo(colour))
    out = io.StringIO()
    call_command("enroll_folder", str(root), "--queue", stdout=out)
    assert "Queued enroll_folder" in out.getvalue()
    assert sorted(Member.objects.values_list("display_name", flat=True)) == ["Ada Lovelace", "Alan Turing"]
    assert Template.objects.get(member__external_id="Ada_Lovelace").count == 2
    with pytest.raises(errors.InvalidInput):
        services.folder_enroll(root=root, on_existing="merge")
    with pytest.raises(errors.InvalidInput):
        services.folder_enroll(root=tmp_path / "missing")
    summary = services.folder_enroll(root=root, on_existing="replace")
    assert (summary.members_updated, summary.photos_added) == (2, 3)
    assert Template.objects.get(member__external_id="Ada_Lovelace").count == 2
