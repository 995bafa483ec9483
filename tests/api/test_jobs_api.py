"""POST /recognize (a job) and GET /jobs/{id} with the real engine on LFW photos."""

from __future__ import annotations

import pytest

from accounts.services import token_create
from members import services

from .conftest import _client, error_code, upload


@pytest.mark.django_db
def test_recognize_queues_a_job_then_the_job_holds_the_result(
    api, photos, eager_celery, django_capture_on_commit_callbacks
):
    powell = services.member_create(display_name="Colin Powell", photos=photos["Colin_Powell"][:3]).member
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/recognize", {"image": upload(photos["Colin_Powell"][9])}, format="multipart")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and response["Location"] == body["url"]
    job = api.get(body["url"])
    assert job.status_code == 200
    result = job.json()
    assert result["status"] == "done" and result["finished"] and result["error"] is None
    subject = max(result["faces"], key=lambda f: f["box"][2] * f["box"][3])
    assert subject["member_id"] == powell.pk and subject["member"] == "Colin Powell"
    assert result["width"] == 250 and result["model_name"]


@pytest.mark.django_db
def test_jobs_are_private_and_unknown_ones_are_404(api, reader, photos, eager_celery):
    job = api.post("/api/v1/recognize", {"image": upload(photos["Tony_Blair"][0])}, format="multipart").json()
    other = _client(token_create(user=reader)[1])
    for client, url in ((other, job["url"]), (api, "/api/v1/jobs/999999"), (api, f"/api/v1/jobs/{2**70}")):
        response = client.get(url)
        assert response.status_code == 404 and error_code(response) == "job_not_found"


@pytest.mark.django_db(transaction=True)
def test_recognize_with_wait_answers_the_result(api, photos, eager_celery):
    # Outside a test transaction the job is queued at the commit; eager Celery runs it at once.
    response = api.post("/api/v1/recognize?wait=10", {"image": upload(photos["Hugo_Chavez"][0])}, format="multipart")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "done" and body["faces"] and body["faces"][0]["member_id"] is None


@pytest.mark.django_db
def test_recognize_wait_is_validated(api):
    response = api.post("/api/v1/recognize?wait=999", {"image": "aGk="}, format="json")
    assert response.status_code == 400 and error_code(response) == "invalid_request"
