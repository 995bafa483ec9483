"""GET /api/v1/gallery: the gallery in use and its calibrated 1:N threshold."""

from __future__ import annotations

import pytest

from faceengine.embedders.registry import DEFAULT_MODEL
from members import selectors
from tests.members.test_open_set import add_templates

pytestmark = pytest.mark.django_db


def test_the_gallery_endpoint_reports_the_threshold_for_its_size(api):
    add_templates(40)
    body = api.get("/api/v1/gallery").json()
    expected = selectors.identification_bar(gallery_size=40)
    assert body["model"] == DEFAULT_MODEL.name and body["dim"] == DEFAULT_MODEL.dim
    assert body["gallery_size"] == 40 and body["match"] == "template" and body["basis"] == "calibrated"
    assert body["threshold"] == pytest.approx(expected.threshold, abs=1e-4)
    assert body["false_accept_rate"] == pytest.approx(0.01, rel=0.05)
    add_templates(400)
    bigger = api.get("/api/v1/gallery").json()
    assert bigger["gallery_size"] == 440 and bigger["threshold"] > body["threshold"]


def test_the_gallery_endpoint_needs_the_view_member_permission(reader_api, anon_api):
    assert reader_api.get("/api/v1/gallery").status_code == 403
    assert anon_api.get("/api/v1/gallery").status_code in (401, 403)
