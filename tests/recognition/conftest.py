"""Fixtures of the recognition tests (the shared ones are in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def fake_threshold(settings):
    # The fake model has no calibrated threshold of its own (the real-engine tests keep the
    # real model's).
    settings.FACESITE_GALLERY = {**settings.FACESITE_GALLERY, "IDENTIFICATION_THRESHOLD": 0.9}
