"""What Swagger offers is what the API does (issue 15), checked by walking the live schema."""

import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests.fixtures import REAL_OBJECTS, FuzzData

pytestmark = pytest.mark.django_db

# The paginators' parameters, not filters (tested with the pagination).
NOT_FILTERS = {"page", "page_size", "cursor"}
# Instants differ between two runs of one request (`now()` computed in Python).
TIMESTAMP = re.compile(r"'\d{4}-\d\d-\d\d[ T][\d:.]+(?:[+-]\d\d:?\d\d)?'")


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        return APIClient().get("/api/schema/?format=json").json()


def query_parameters(operation: dict) -> list[dict]:
    return [p for p in operation.get("parameters", []) if p["in"] == "query"]


def listings(schema: dict):
    """(path, GET operation) of every path without parameters."""
    for path, item in schema["paths"].items():
        if "get" in item and "{" not in path:
            yield path, item["get"]


def test_swagger_lists_signing_in_first(schema):
    listed = [tag["name"] for tag in schema["tags"]]
    used = {tag for item in schema["paths"].values() for op in item.values() for tag in op["tags"]}

    assert listed[0] == "auth"
    assert schema["paths"]["/api/auth/token/"]["post"]["tags"] == ["auth"]
    assert used <= set(listed), f"give {sorted(used - set(listed))} a place in TAGS"


def test_the_pending_list_offers_no_status_filter(schema):
    """Every row of it is pending: the filter could only repeat that or empty the page."""

    def offered(path: str) -> set[str]:
        return {p["name"] for p in query_parameters(schema["paths"][path]["get"])}

    assert offered("/api/approvals/pending/") == {"contract", "overdue", "page", "page_size"}
    assert "status" in offered("/api/approvals/")


def test_every_boolean_filter_refuses_what_is_not_a_boolean(schema, admin_client):
    """django-filter's BooleanFilter ignored `?is_active=yes` and listed every row."""
    checked = []
    for path, operation in listings(schema):
        for parameter in query_parameters(operation):
            if parameter["schema"].get("type") != "boolean":
                continue
            response = admin_client.get(path, {parameter["name"]: "yes"})
            assert response.status_code == 400, (path, parameter["name"])
            assert parameter["name"] in response.json()["fields"], (path, parameter["name"])
            checked.append(f"{path}?{parameter['name']}")
    assert len(checked) >= 10, checked


def samples(parameter: dict) -> list[str]:
    """Valid-looking values for a parameter, the likeliest first."""
    spec = parameter["schema"]
    if spec.get("type") == "array":  # `ordering`: one item is a valid value
        spec = spec["items"]
    if "enum" in spec:
        return [str(value) for value in spec["enum"] if value not in (None, "")]
    if spec.get("type") == "boolean":
        return ["true", "false"]
    if spec.get("type") in ("integer", "number"):
        return ["1"]
    if spec.get("format") == "uuid":
        return [str(uuid.uuid4())]
    if spec.get("format") == "date-time":
        return ["2020-01-01T00:00:00Z"]
    return ["2020-01-01", "x"]  # dates declared as strings, then free text


def statements(client, path: str, params: dict) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path, params)
    return response.status_code, [TIMESTAMP.sub("'<instant>'", q["sql"]) for q in queries]


def test_every_filter_the_schema_offers_changes_the_query(schema):
    """A filter the view ignored would run the same SQL as no filter at all."""
    data = FuzzData(REAL_OBJECTS)  # one object of each kind at least: no listing is empty
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {data.token()}")
    checked = []
    for path, operation in listings(schema):
        status, unfiltered = statements(client, path, {})
        assert status == 200, path
        for parameter in query_parameters(operation):
            name = parameter["name"]
            if name in NOT_FILTERS:
                continue
            answered = [statements(client, path, {name: value}) for value in samples(parameter)]
            valid = [sql for status, sql in answered if status == 200]
            assert valid, f"no sample value of {path}?{name} is accepted"
            assert any(sql != unfiltered for sql in valid), f"{path}?{name} changes nothing"
            checked.append(f"{path}?{name}")
    assert len(checked) >= 50, checked
