"""POST /api/contracts/: what is stored, defaults, and the input refused."""

import uuid
from decimal import Decimal

import pytest

from audit.models import AuditLog
from contracts.models import Contract, ContractStatus
from tests.factories import UserFactory
from tests.fixtures import CONTRACTS, detail_url
from tests.fixtures import contracts_assert_400_on as assert_400_on

pytestmark = pytest.mark.django_db


def valid_body(**overrides) -> dict:
    return {
        "title": "Acme master agreement",
        "contract_type": "MSA",
        "value": "600000.00",
        "currency": "EUR",
        "counterparty": "Acme Corp",
        "department": "Sales",
        "region": "EMEA",
        "start_date": "2025-01-01",
        "end_date": "2025-12-31",
        "text": "This Agreement is made between the parties.",
        "metadata": {"deal_id": "D-17", "renewal": True, "seats": 40},
        **overrides,
    }


# --------------------------------------------------------------------------- create


def test_create_returns_201_with_every_field(client, user):
    response = client.post(CONTRACTS, valid_body(), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) >= {
        "id",
        "title",
        "contract_type",
        "value",
        "currency",
        "counterparty",
        "department",
        "region",
        "start_date",
        "end_date",
        "text",
        "metadata",
        "status",
        "created_by",
        "created_at",
        "updated_at",
        "workflow",
    }
    assert body["title"] == "Acme master agreement"
    assert body["contract_type"] == "MSA"
    assert body["value"] == "600000.00"
    assert body["currency"] == "EUR"
    assert body["counterparty"] == "Acme Corp"
    assert body["department"] == "Sales"
    assert body["region"] == "EMEA"
    assert body["start_date"] == "2025-01-01"
    assert body["end_date"] == "2025-12-31"
    assert body["text"] == "This Agreement is made between the parties."
    assert body["metadata"] == {"deal_id": "D-17", "renewal": True, "seats": 40}
    assert body["status"] == "draft"
    assert body["workflow"] is None
    assert body["created_by"]["id"] == str(user.pk)
    assert body["created_by"]["email"] == user.email
    assert "+" in body["created_at"] or body["created_at"].endswith("Z")

    contract = Contract.objects.get(pk=body["id"])
    assert contract.tenant_id == user.tenant_id
    assert contract.created_by_id == user.pk
    assert contract.value == Decimal("600000.00")
    assert contract.start_date.isoformat() == "2025-01-01"


def test_create_writes_contract_created_audit_row(client, user):
    body = client.post(CONTRACTS, valid_body(), format="json").json()

    row = AuditLog.objects.get(action="contract_created", resource_id=body["id"])
    assert row.tenant_id == user.tenant_id
    assert row.actor_id == user.pk
    assert row.resource_type == "contract"
    assert row.changes["title"] == [None, "Acme master agreement"]
    assert row.changes["value"] == [None, "600000.00"]
    assert row.changes["start_date"] == [None, "2025-01-01"]
    assert row.request_id


@pytest.mark.parametrize("value", [600000, 600000.0, "600000", "600000.0", "600000.00"])
def test_money_accepts_number_or_string_and_returns_two_places(client, value):
    response = client.post(CONTRACTS, valid_body(value=value), format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["value"] == "600000.00"
    assert client.get(detail_url(response.json()["id"])).json()["value"] == "600000.00"


def test_value_is_optional_and_nullable(client):
    body = valid_body(value=None)
    response = client.post(CONTRACTS, body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["value"] is None
    del body["value"]
    assert client.post(CONTRACTS, body, format="json").json()["value"] is None


def test_minimal_contract_gets_defaults(client):
    response = client.post(CONTRACTS, {"title": "NDA", "contract_type": "NDA"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["currency"] == "USD"
    assert body["metadata"] == {}
    assert body["counterparty"] == ""
    assert body["text"] == ""
    assert body["start_date"] is None


def test_currency_defaults_to_usd(client):
    body = valid_body()
    del body["currency"]
    assert client.post(CONTRACTS, body, format="json").json()["currency"] == "USD"


def test_lower_case_currency_is_upper_cased(client):
    response = client.post(CONTRACTS, valid_body(currency="gbp"), format="json")
    assert response.status_code == 201
    assert response.json()["currency"] == "GBP"
    assert Contract.objects.get(pk=response.json()["id"]).currency == "GBP"


@pytest.mark.parametrize("currency", ["XYZ", "US", "DOLLARS", "", 840, "US\x00"])
def test_unknown_currency_is_400(client, currency):
    assert_400_on(client.post(CONTRACTS, valid_body(currency=currency), format="json"), "currency")
    assert not Contract.objects.exists()


def test_read_only_fields_are_ignored(client, user, other_tenant):
    stranger = UserFactory(tenant=other_tenant)
    forced_id = uuid.uuid4()
    response = client.post(
        CONTRACTS,
        valid_body(
            id=str(forced_id),
            tenant=str(other_tenant.pk),
            status="approved",
            created_by=str(stranger.pk),
            has_blocking_findings=True,
            workflow={"id": str(uuid.uuid4())},
        ),
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"] != str(forced_id)
    assert body["status"] == "draft"
    assert body["created_by"]["id"] == str(user.pk)
    assert body["has_blocking_findings"] is False
    contract = Contract.objects.get(pk=body["id"])
    assert contract.tenant_id == user.tenant_id
    assert contract.status == ContractStatus.DRAFT
    assert not Contract.objects.filter(pk=forced_id).exists()


def test_end_date_before_start_date_is_400(client):
    response = client.post(
        CONTRACTS, valid_body(start_date="2025-06-01", end_date="2025-05-31"), format="json"
    )
    assert_400_on(response, "end_date")


def test_same_start_and_end_date_is_allowed(client):
    response = client.post(
        CONTRACTS, valid_body(start_date="2025-06-01", end_date="2025-06-01"), format="json"
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    "value",
    [
        "1.234",  # three decimal places
        1.234,
        "-1.00",  # negative
        -5,
        10**16,  # 17 integer digits: beyond numeric(18, 2)
        "10000000000000000",
        "1e16",
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "inf",
        True,
        False,
        "12,5",
        "abc",
        [1],
        {"amount": 1},
    ],
)
def test_bad_money_is_400(client, value):
    assert_400_on(client.post(CONTRACTS, valid_body(value=value), format="json"), "value")
    assert not Contract.objects.exists()


def test_largest_money_value_fits(client):
    response = client.post(CONTRACTS, valid_body(value="9999999999999999.99"), format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["value"] == "9999999999999999.99"


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_non_finite_json_number_literals_are_400(client, literal):
    raw = b'{"title": "T", "contract_type": "MSA", "value": ' + literal + b"}"
    response = client.generic("POST", CONTRACTS, raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert not Contract.objects.exists()


@pytest.mark.parametrize(
    ("fragment", "field"),
    [
        (b'"title": "lone \\ud800 surrogate"', "title"),
        (b'"text": "\\udfff"', "text"),
        (b'"metadata": {"note": "lone \\udfff surrogate"}', "metadata"),
        (b'"metadata": {"ok": {"\\ud800": 1}}', "metadata"),
        (b'"metadata": {"ok": ["\\ud83d"]}', "metadata"),
    ],
)
def test_lone_surrogates_are_400_not_500(client, fragment, field):
    raw = b'{"title": "T", "contract_type": "MSA", ' + fragment + b"}"
    response = client.generic("POST", CONTRACTS, raw, content_type="application/json")
    assert_400_on(response, field)
    assert not Contract.objects.exists()


def test_surrogate_pair_is_a_normal_character(client):
    raw = b'{"title": "T", "contract_type": "MSA", "metadata": {"emoji": "\\ud83d\\ude00"}}'
    response = client.generic("POST", CONTRACTS, raw, content_type="application/json")
    assert response.status_code == 201, response.json()
    assert response.json()["metadata"] == {"emoji": "\U0001f600"}


def test_malformed_json_is_400(client):
    response = client.generic("POST", CONTRACTS, b'{"title": ', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


@pytest.mark.parametrize(
    "metadata",
    [
        [],  # not an object
        ["a", "b"],
        "a string",
        42,
        None,
        {"has space": 1},  # keys must be identifiers
        {"dash-key": 1},
        {"": 1},
        {"k" * 65: 1},
        {"key\n": 1},
        {"nul\x00key": 1},
        {"ok": "nul\x00value"},  # nested NUL
        {"ok": {"deeper": ["x\x00"]}},
        {"ok": {"deep\x00key": 1}},
        {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}},  # too deep
        {"a": [[[[["too deep"]]]]]},
        {"big": 10**15},
        {"k": "x" * 20_000},  # too large
    ],
)
def test_bad_metadata_is_400(client, metadata):
    assert_400_on(client.post(CONTRACTS, valid_body(metadata=metadata), format="json"), "metadata")
    assert not Contract.objects.exists()


def test_metadata_at_depth_limit_is_accepted(client):
    metadata = {"a": {"b": {"c": {"d": "leaf"}}}}
    response = client.post(CONTRACTS, valid_body(metadata=metadata), format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["metadata"] == metadata


def test_text_over_two_million_characters_is_400(client):
    response = client.post(CONTRACTS, valid_body(text="x" * 2_000_001), format="json")
    assert_400_on(response, "text")


def test_title_over_255_is_400(client):
    assert_400_on(client.post(CONTRACTS, valid_body(title="t" * 256), format="json"), "title")
    response = client.post(CONTRACTS, valid_body(title="t" * 255), format="json")
    assert response.status_code == 201


@pytest.mark.parametrize("field", ["text", "title", "counterparty", "contract_type", "region"])
def test_nul_in_text_fields_is_400(client, field):
    body = valid_body(**{field: "before\x00after"})
    assert_400_on(client.post(CONTRACTS, body, format="json"), field)
    assert not Contract.objects.exists()


@pytest.mark.parametrize("field", ["title", "contract_type"])
def test_required_fields(client, field):
    body = valid_body()
    del body[field]
    assert_400_on(client.post(CONTRACTS, body, format="json"), field)
    assert_400_on(client.post(CONTRACTS, valid_body(**{field: ""}), format="json"), field)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("start_date", "2025-02-30"),
        ("start_date", "yesterday"),
        ("end_date", 20250101),
        ("contract_type", "x" * 51),
        ("department", "d" * 101),
        ("title", {"nested": "object"}),
    ],
)
def test_wrong_types_are_400(client, field, value):
    assert_400_on(client.post(CONTRACTS, valid_body(**{field: value}), format="json"), field)


def test_body_must_be_an_object(client):
    response = client.post(CONTRACTS, ["not", "an", "object"], format="json")
    assert response.status_code == 400


def test_create_requires_authentication(api_client, db):
    response = api_client.post(CONTRACTS, valid_body(), format="json")
    assert response.status_code == 401
    assert not Contract.objects.exists()
