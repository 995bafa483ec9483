"""Property-based fuzzing of the whole served OpenAPI schema (schemathesis over WSGI).

Every operation gets a bounded number of generated requests, with a token that holds every
permission, against the real engine; no answer may be a 5xx, use an undocumented status or
content type, or break its documented schema. Run alone with ``pytest -m slow tests/api``.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES_PER_OPERATION = 25

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def fuzz_settings(settings, real_recognizer):
    # The real WSGI handler closes the database connection around each request, which would end
    # the test's transaction; Django's own test client disconnects these signals the same way.
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api": "100000/min", "engine": "100000/min"},
    }
    yield settings
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.slow
@pytest.mark.django_db
@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
def test_api_schema(case, fuzz_settings, manager_token):
    case.call_and_validate(headers={"Authorization": f"Token {manager_token}"}, checks=CHECKS)
