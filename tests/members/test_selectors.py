"""The gallery selector: per-process cache, rebuilt on a version change, models kept apart."""

from __future__ import annotations

import numpy as np
import pytest

from faceengine.errors import ModelMismatch
from members import errors, selectors, services
from members.models import Embedding, FaceSample, Member, Template, vector_to_bytes
from members.services import gallery
from tests.fakes import FAKE_DIM, FAKE_MODEL, face_photo, make_fake_recognizer

pytestmark = pytest.mark.django_db


def embed(colour: str, model: str = FAKE_MODEL, seed: int = 0) -> np.ndarray:
    recognizer = make_fake_recognizer(model, FAKE_DIM, seed)
    rgb = recognizer.load(face_photo(colour))
    return recognizer.embed_faces(rgb, recognizer.detector.detect(rgb))[0]


def test_the_index_is_cached_until_the_gallery_changes(fake_engine, django_assert_max_num_queries):
    red = services.member_create(display_name="Red", photos=[face_photo("red")]).member
    first = selectors.gallery_for_model(model_name=FAKE_MODEL, dim=FAKE_DIM)
    assert first.labels == [red.pk] and first.model_name == FAKE_MODEL
    with django_assert_max_num_queries(1):  # only the version token is read
        assert selectors.gallery_for_model(model_name=FAKE_MODEL, dim=FAKE_DIM) is first
    blue = services.member_create(display_name="Blue", photos=[face_photo("blue")]).member
    second = selectors.gallery_for_model(model_name=FAKE_MODEL, dim=FAKE_DIM)
    assert sorted(second.labels) == sorted([red.pk, blue.pk])  # changed in place, not rebuilt
    assert second.search(embed("blue")[None], k=1)[0][0].label == blue.pk


def test_another_workers_change_is_noticed_through_the_database(fake_engine):
    red = services.member_create(display_name="Red", photos=[face_photo("red")]).member
    assert selectors.gallery_for_model(model_name=FAKE_MODEL, dim=FAKE_DIM).labels == [red.pk]
    # Another process changed the gallery: only the token in the database tells this one.
    Member.objects.filter(pk=red.pk).update(is_active=False)
    gallery.bump_gallery_version()
    assert len(selectors.gallery_for_model(model_name=FAKE_MODEL, dim=FAKE_DIM)) == 0


def test_models_are_never_mixed(fake_engine):
    member = services.member_create(display_name="Red", photos=[face_photo("red")]).member
    services.member_recompute_embeddings(member=member, model_name="other")
    mine = selectors.gallery_for_model(model_name=FAKE_MODEL, dim=FAKE_DIM)
    other = selectors.gallery_for_model(model_name="other", dim=FAKE_DIM)
    np.testing.assert_allclose(mine.search(embed("red")[None], 1)[0][0].similarity, 1.0, atol=1e-5)
    np.testing.assert_allclose(other.search(embed("red", "other", 1)[None], 1)[0][0].similarity, 1.0, atol=1e-5)
    assert len(selectors.gallery_for_model(model_name="unknown", dim=FAKE_DIM)) == 0
    assert len(selectors.gallery_for_model(model_name=FAKE_MODEL, dim=FAKE_DIM * 2)) == 0
    with pytest.raises(ModelMismatch, match="cannot be compared"):
        other.check_compatible(FAKE_MODEL, FAKE_DIM)
    with pytest.raises(ModelMismatch, match="cannot be compared"):
        make_fake_recognizer().recognize(face_photo("red"), other, threshold=0.5)


def test_sample_matching_indexes_every_face_and_names_each_member_once(fake_engine):
    mixed = services.member_create(display_name="Mixed", photos=[face_photo("red"), face_photo("blue")]).member
    green = services.member_create(display_name="Green", photos=[face_photo("green")]).member
    templates = selectors.gallery_for_model(model_name=FAKE_MODEL, dim=FAKE_DIM, match="template")
    samples = selectors.gallery_for_model(model_name=FAKE_MODEL, dim=FAKE_DIM, match="sample")
    assert len(templates) == 2 and len(samples) == 3
    ((best, second),) = samples.search(embed("blue")[None], k=2)
    assert (best.label, second.label) == (mixed.pk, green.pk)
    assert best.similarity == pytest.approx(1.0, abs=1e-5)
    # The template (mean of red and blue) is less similar to a blue face than the blue sample.
    assert templates.search(embed("blue")[None], k=1)[0][0].similarity < best.similarity - 0.01
    with pytest.raises(errors.InvalidInput):
        selectors.gallery_for_model(model_name=FAKE_MODEL, dim=FAKE_DIM, match="median")


def test_settings_choose_match_mode_threshold_and_backend(fake_engine, settings):
    services.member_create(display_name="Red", photos=[face_photo("red"), face_photo("blue")])
    settings.FACESITE_GALLERY = {"MATCH": "sample", "INDEX_BACKEND": "faiss", "IDENTIFICATION_THRESHOLD": 0.7}
    gallery = selectors.gallery_for_model(model_name=FAKE_MODEL, dim=FAKE_DIM)
    assert len(gallery) == 2 and gallery.backend == "faiss"
    assert selectors.identification_threshold() == 0.7
    settings.FACESITE_GALLERY = {}
    # Without the setting: the default model's threshold calibrated for its (empty) gallery.
    assert selectors.identification_threshold() == selectors.identification_bar(gallery_size=0).threshold
    assert selectors.identification_bar().basis == "calibrated"


def test_a_corrupt_vector_is_skipped_not_fatal(fake_engine):
    member = services.member_create(display_name="Red", photos=[face_photo("red")]).member
    broken = services.member_create(display_name="Broken", photos=[face_photo("blue")]).member
    Template.objects.filter(member=broken).update(vector=vector_to_bytes(np.ones(3)))
    gallery.bump_gallery_version()
    assert selectors.gallery_for_model(model_name=FAKE_MODEL, dim=FAKE_DIM).labels == [member.pk]


def test_member_names_and_member_get():
    a = Member.objects.create(display_name="Ada")
    b = Member.objects.create(display_name="Bob")
    assert selectors.member_names([a.pk, b.pk, a.pk, 10**9, None]) == {a.pk: "Ada", b.pk: "Bob"}
    assert selectors.member_names([]) == {}
    assert selectors.member_get(member_id=a.pk) == a
    with pytest.raises(errors.MemberNotFound):
        selectors.member_get(member_id=10**9)
    assert [m.display_name for m in selectors.member_list(search="ad")] == ["Ada"]
    assert selectors.member_list().get(pk=a.pk).face_count == 0
    assert list(selectors.member_faces(member=a)) == []
    assert not FaceSample.objects.exists() and not Embedding.objects.exists()
