"""Property-based fuzzing of every operation in the service's own OpenAPI schema (schemathesis).

The schema is loaded from GET /api/schema/ of the WSGI application, in-process, and each
operation becomes one test. Every generated request (valid and invalid input) is sent as a tenant
admin with a fresh access token, against a tenant holding real data, and every response must:

* not be a 5xx (`not_a_server_error`),
* have a status the schema documents for the operation (`status_code_conformance`),
* match the documented body schema for that status (`response_schema_conformance`), and
* carry the documented content type (`content_type_conformance`).

Operations with an `{id}` in the path are aimed at a real object of the caller's tenant for about
half of the examples (REAL_OBJECTS below); a new kind of path needs one line there.
"""

import hashlib

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from tests.fixtures import REAL_OBJECTS, FuzzData

pytestmark = [
    pytest.mark.django_db,
    # An unordered page is a correctness bug (rows repeat or go missing across pages): fail on it.
    pytest.mark.filterwarnings("error::django.core.paginator.UnorderedObjectListWarning"),
]

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
]


def path_prefix(path: str) -> str | None:
    """`/api/contracts/{id}/workflow/status/` -> `/api/contracts/{id}/` (None without `{id}`)."""
    return path[: path.index("{id}") + len("{id}/")] if "{id}" in path else None


# The `{id}` paths this schema has (objects are made only for those).
ID_PREFIXES = {
    path_prefix(result.ok().path)
    for result in schema.get_all_operations()
    if isinstance(result, Ok) and "{id}" in result.ok().path
}


@pytest.fixture
def fuzz_data(db):
    data = FuzzData(ID_PREFIXES)
    # Like Django's test client: a request must not close the test's connection (which would end
    # its transaction). After FuzzData: the test client reconnects these after each request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield data
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
def test_api(case, fuzz_data):
    real_id = fuzz_data.ids.get(path_prefix(case.operation.path), None)
    if real_id is not None:
        generated = str(case.path_parameters.get("id", ""))
        # Half of the examples (decided by the generated value, so shrinking is stable).
        if hashlib.sha256(generated.encode()).digest()[0] % 2 == 0:
            case.path_parameters["id"] = str(real_id)
    case.call_and_validate(headers={"Authorization": f"Bearer {fuzz_data.token()}"}, checks=CHECKS)


def test_every_operation_is_fuzzed():
    """The fuzzing above covers the whole schema: nothing is excluded or silently dropped."""
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {operation.label for operation in operations}
    assert len(labels) == len(operations) >= 16
    assert "POST /api/contracts/" in labels
    assert "POST /api/auth/logout/" in labels
    missing = {path_prefix(op.path) for op in operations if "{id}" in op.path} - set(REAL_OBJECTS)
    assert not missing, f"add lines for {sorted(missing)} to REAL_OBJECTS"
