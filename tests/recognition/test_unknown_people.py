"""Unknown people on real LFW photos through the real engine (eager workers): strangers are
clustered per person, naming a cluster enrols its faces and the person is recognised later;
merge and split on real clusters."""

from __future__ import annotations

from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from members.models import AuditEntry, Member
from recognition.models import RecognitionJob, UnknownCluster, UnknownFace
from recognition.services import job_create
from recognition.unknowns import cluster_assign, cluster_merge, cluster_split
from tests.fakes import lfw_photos

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

PEOPLE = ("Hugo_Chavez", "Junichiro_Koizumi")
SEEN = 4


@pytest.fixture
def staff():
    return get_user_model().objects.create_user("boss", password="pw-boss-123", is_staff=True)


def _upload(user, path, capture) -> RecognitionJob:
    with capture(execute=True):
        job = job_create(user=user, upload=SimpleUploadedFile(path.name, path.read_bytes(), content_type="image/jpeg"))
    job.refresh_from_db()
    assert job.status == "done", job.error_message
    return job


@pytest.fixture
def strangers(lfw_dir, real_recognizer, staff, eager_celery, django_capture_on_commit_callbacks):
    """Four photos each of two people nobody enrolled: person -> their jobs."""
    return {
        name: [_upload(staff, p, django_capture_on_commit_callbacks) for p in lfw_photos(lfw_dir, name)[:SEEN]]
        for name in PEOPLE
    }


def _person_of(face: UnknownFace, strangers) -> str:
    return next(name for name, jobs in strangers.items() if face.job_id in {j.pk for j in jobs})


def _cluster_of(name: str, strangers) -> UnknownCluster:
    """The cluster holding most of the person's subject faces (face 0 is the photo's subject in LFW)."""
    jobs = {j.pk for j in strangers[name]}
    counts = Counter(
        f.cluster_id for f in UnknownFace.objects.filter(job_id__in=jobs, cluster__isnull=False)
    ).most_common(1)
    assert counts, f"no cluster for {name}"
    return UnknownCluster.objects.get(pk=counts[0][0])


def test_strangers_cluster_by_person(strangers):
    for name in PEOPLE:
        cluster = _cluster_of(name, strangers)
        people = {_person_of(f, strangers) for f in cluster.faces.all()}
        assert people == {name}  # pure
        assert cluster.size >= SEEN - 1  # and (nearly) complete
        assert cluster.representative.cluster_id == cluster.pk


def test_naming_a_cluster_enrols_its_faces_and_the_person_is_recognised_later(
    strangers, staff, lfw_dir, django_capture_on_commit_callbacks
):
    cluster = _cluster_of("Hugo_Chavez", strangers)
    size = cluster.size
    with django_capture_on_commit_callbacks(execute=True):
        result = cluster_assign(cluster=cluster, display_name="Hugo Chavez", actor=staff)
    member = Member.objects.get(pk=result.member.pk)
    assert result.created and result.faces_sent == size
    assert member.faces.count() == size  # every face of the cluster, through the enrolment workers
    actions = set(AuditEntry.objects.filter(member_id=member.pk, actor=staff).values_list("action", flat=True))
    assert {"create", "add_faces"} <= actions
    assert not UnknownCluster.objects.filter(pk=cluster.pk).exists()
    assert not UnknownFace.objects.filter(cluster_id=cluster.pk).exists()

    later = _upload(staff, lfw_photos(lfw_dir, "Hugo_Chavez")[SEEN + 2], django_capture_on_commit_callbacks)
    subject = max(later.result["faces"], key=lambda f: f["box"][2] * f["box"][3])
    assert subject["member_id"] == member.pk
    other = _upload(staff, lfw_photos(lfw_dir, "Junichiro_Koizumi")[SEEN + 2], django_capture_on_commit_callbacks)
    assert member.pk not in {f["member_id"] for f in other.result["faces"]}


def test_split_and_merge_real_clusters(strangers):
    cluster = _cluster_of("Junichiro_Koizumi", strangers)
    size = cluster.size
    wrong = cluster.faces.order_by("id").first()
    alone = cluster_split(cluster=cluster, face_id=wrong.pk)
    cluster.refresh_from_db()
    assert (cluster.size, alone.size) == (size - 1, 1)
    assert list(alone.faces.all()) == [wrong]
    assert cluster.representative_id != wrong.pk
    merged = cluster_merge(cluster=cluster, other=alone)
    assert merged.size == size and not UnknownCluster.objects.filter(pk=alone.pk).exists()
    # Two different people merged on purpose: the sizes add up; a split takes one back out.
    chavez = _cluster_of("Hugo_Chavez", strangers)
    both = cluster_merge(cluster=chavez, other=merged)
    assert both.size == chavez.size + size
