"""Contracts API: create, list (pagination, filters, ordering), detail, PATCH while draft."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.models import AuditLog
from contracts.models import Contract, ContractStatus
from core import rls
from tests.factories import ContractFactory, UserFactory

pytestmark = pytest.mark.django_db

CONTRACTS = "/api/contracts/"


def detail_url(contract) -> str:
    return f"{CONTRACTS}{getattr(contract, 'pk', contract)}/"


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


def assert_400_on(response, field: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    assert field in body["fields"], body
    assert "request_id" in body


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


# --------------------------------------------------------------------------- list


def make_contract(user, **fields):
    return ContractFactory(created_by=user, tenant=user.tenant, **fields)


def result_ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_list_is_paginated_and_tenant_scoped(client, user, other_tenant):
    mine = make_contract(user)
    ContractFactory(created_by=UserFactory(tenant=other_tenant))

    response = client.get(CONTRACTS)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 1
    assert body["next"] is None
    assert body["previous"] is None
    assert [row["id"] for row in body["results"]] == [str(mine.pk)]
    assert body["results"][0]["value"] == f"{mine.value:.2f}"


def test_page_size_defaults_to_50_and_is_capped_at_200(client, user):
    ContractFactory.create_batch(205, created_by=user, tenant=user.tenant)

    first = client.get(CONTRACTS).json()
    assert first["count"] == 205
    assert len(first["results"]) == 50
    assert first["previous"] is None
    assert "page=2" in first["next"]

    assert len(client.get(CONTRACTS, {"page_size": 10}).json()["results"]) == 10
    capped = client.get(CONTRACTS, {"page_size": 1000}).json()
    assert len(capped["results"]) == 200
    last = client.get(CONTRACTS, {"page_size": 200, "page": 2}).json()
    assert len(last["results"]) == 5
    assert last["next"] is None
    assert last["previous"] is not None


def test_pages_do_not_overlap(client, user):
    ContractFactory.create_batch(7, created_by=user, tenant=user.tenant)
    seen = []
    for page in (1, 2, 3):
        seen += result_ids(client.get(CONTRACTS, {"page_size": 3, "page": page}))
    assert len(seen) == 7
    assert len(set(seen)) == 7


def test_page_beyond_the_end_is_404_json(client, user):
    make_contract(user)
    response = client.get(CONTRACTS, {"page": 5})
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


def test_default_order_is_newest_first(client, user):
    older = make_contract(user)
    newer = make_contract(user)
    Contract.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(days=1))
    assert result_ids(client.get(CONTRACTS)) == [str(newer.pk), str(older.pk)]


def test_filter_by_status(client, user):
    draft = make_contract(user)
    approved = make_contract(user, status=ContractStatus.APPROVED)
    assert result_ids(client.get(CONTRACTS, {"status": "approved"})) == [str(approved.pk)]
    assert result_ids(client.get(CONTRACTS, {"status": "draft"})) == [str(draft.pk)]
    assert result_ids(client.get(CONTRACTS, {"status": "in_review"})) == []


def test_filter_by_contract_type(client, user):
    msa = make_contract(user, contract_type="MSA")
    make_contract(user, contract_type="NDA")
    assert result_ids(client.get(CONTRACTS, {"contract_type": "MSA"})) == [str(msa.pk)]
    assert result_ids(client.get(CONTRACTS, {"contract_type": "SOW"})) == []


def test_filter_by_currency(client, user):
    make_contract(user, currency="USD")
    eur = make_contract(user, currency="EUR")
    assert result_ids(client.get(CONTRACTS, {"currency": "EUR"})) == [str(eur.pk)]


def test_filter_by_value_range(client, user):
    small = make_contract(user, value=Decimal("100.00"))
    middle = make_contract(user, value=Decimal("500000.00"))
    large = make_contract(user, value=Decimal("2000000.00"))
    make_contract(user, value=None)

    assert set(result_ids(client.get(CONTRACTS, {"value_min": "500000"}))) == {
        str(middle.pk),
        str(large.pk),
    }
    assert set(result_ids(client.get(CONTRACTS, {"value_max": "500000.00"}))) == {
        str(small.pk),
        str(middle.pk),
    }
    both = client.get(CONTRACTS, {"value_min": "101", "value_max": "1999999.99"})
    assert result_ids(both) == [str(middle.pk)]


def test_filter_by_created_by(client, user, tenant):
    colleague = UserFactory(tenant=tenant)
    mine = make_contract(user)
    make_contract(colleague)
    assert result_ids(client.get(CONTRACTS, {"created_by": str(user.pk)})) == [str(mine.pk)]
    assert result_ids(client.get(CONTRACTS, {"created_by": str(uuid.uuid4())})) == []


def test_filter_by_created_window(client, user):
    old = make_contract(user)
    recent = make_contract(user)
    Contract.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    cutoff = (timezone.now() - timedelta(days=5)).isoformat()

    assert result_ids(client.get(CONTRACTS, {"created_after": cutoff})) == [str(recent.pk)]
    assert result_ids(client.get(CONTRACTS, {"created_before": cutoff})) == [str(old.pk)]
    assert result_ids(client.get(CONTRACTS, {"created_after": "2000-01-01T00:00:00Z"})) == [
        str(recent.pk),
        str(old.pk),
    ]


def test_search_matches_title_or_counterparty_case_insensitively(client, user):
    by_title = make_contract(user, title="Globex Master Services", counterparty="Initech")
    by_party = make_contract(user, title="Reseller deal", counterparty="GLOBEX Holdings")
    make_contract(user, title="Unrelated", counterparty="Umbrella")

    found = set(result_ids(client.get(CONTRACTS, {"search": "globex"})))
    assert found == {str(by_title.pk), str(by_party.pk)}
    assert result_ids(client.get(CONTRACTS, {"search": "initech"})) == [str(by_title.pk)]
    assert result_ids(client.get(CONTRACTS, {"search": "nothing-like-this"})) == []


def test_search_treats_like_wildcards_literally(client, user):
    make_contract(user, title="Plain title", counterparty="Someone")
    percent = make_contract(user, title="100% discount", counterparty="Someone")
    assert result_ids(client.get(CONTRACTS, {"search": "%"})) == [str(percent.pk)]
    assert result_ids(client.get(CONTRACTS, {"search": "_"})) == []


def test_ordering_by_value_descending_and_ascending(client, user):
    values = ["300.00", "100.00", "200.00"]
    contracts = {value: make_contract(user, value=Decimal(value)) for value in values}

    descending = result_ids(client.get(CONTRACTS, {"ordering": "-value"}))
    assert descending == [str(contracts[v].pk) for v in ("300.00", "200.00", "100.00")]
    ascending = result_ids(client.get(CONTRACTS, {"ordering": "value"}))
    assert ascending == [str(contracts[v].pk) for v in ("100.00", "200.00", "300.00")]


def test_ordering_by_title(client, user):
    b = make_contract(user, title="Bravo")
    a = make_contract(user, title="Alpha")
    c = make_contract(user, title="Charlie")
    assert result_ids(client.get(CONTRACTS, {"ordering": "title"})) == [
        str(a.pk),
        str(b.pk),
        str(c.pk),
    ]


def test_filters_combine(client, user):
    hit = make_contract(user, contract_type="MSA", value=Decimal("900000"), title="Big MSA")
    make_contract(user, contract_type="MSA", value=Decimal("10"), title="Small MSA")
    make_contract(user, contract_type="NDA", value=Decimal("900000"), title="Big NDA")
    response = client.get(
        CONTRACTS, {"contract_type": "MSA", "value_min": "500000", "search": "big"}
    )
    assert result_ids(response) == [str(hit.pk)]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "done"}, "status"),
        ({"status": "DRAFT"}, "status"),
        ({"value_min": "abc"}, "value_min"),
        ({"value_min": "NaN"}, "value_min"),
        ({"value_max": "Infinity"}, "value_max"),
        ({"value_max": "-inf"}, "value_max"),
        ({"value_min": "1e100000"}, "value_min"),
        ({"value_max": "9" * 400}, "value_max"),
        ({"created_by": "not-a-uuid"}, "created_by"),
        ({"created_by": "123"}, "created_by"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_after": "2025-13-01T00:00:00Z"}, "created_after"),
        ({"created_before": "2025-01-01T25:00:00Z"}, "created_before"),
        ({"ordering": "password"}, "ordering"),
        ({"ordering": "created_by__password"}, "ordering"),
        ({"ordering": "-unknown"}, "ordering"),
        ({"ordering": "value,nope"}, "ordering"),
        ({"ordering": "tenant"}, "ordering"),
        ({"search": "s" * 201}, "search"),
        ({"contract_type": "t" * 51}, "contract_type"),
        ({"currency": "EURO"}, "currency"),
    ],
)
def test_invalid_filter_values_are_400(client, user, params, field):
    make_contract(user)
    assert_400_on(client.get(CONTRACTS, params), field)


def test_extreme_but_valid_datetimes_filter_instead_of_failing(client, user):
    contract = make_contract(user)
    early = {"created_after": "0001-01-01T00:00:00+05:00"}
    late = {"created_before": "9999-12-31T23:59:59-05:00"}
    assert result_ids(client.get(CONTRACTS, early)) == [str(contract.pk)]
    assert result_ids(client.get(CONTRACTS, late)) == [str(contract.pk)]
    assert result_ids(client.get(CONTRACTS, {"created_before": "0001-01-01T00:00:00Z"})) == []


def test_blank_filter_values_are_ignored(client, user):
    contract = make_contract(user)
    blank = {"status": "", "value_min": "", "created_by": "", "search": "", "ordering": ""}
    assert result_ids(client.get(CONTRACTS, blank)) == [str(contract.pk)]


@pytest.mark.parametrize(
    "params", [{"search": "a\x00b"}, {"contract_type": "\x00"}, {"ordering\x00": "value"}]
)
def test_nul_in_query_string_is_400(client, user, params):
    response = client.get(CONTRACTS, params)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"


# --------------------------------------------------------------------------- detail


def test_detail(client, user):
    contract = make_contract(user, value=Decimal("1234.5"), metadata={"k": "v"})
    response = client.get(detail_url(contract))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(contract.pk)
    assert body["title"] == contract.title
    assert body["value"] == "1234.50"
    assert body["metadata"] == {"k": "v"}
    assert body["status"] == "draft"
    assert body["workflow"] is None
    assert body["created_by"]["id"] == str(user.pk)


def test_colleagues_see_each_others_contracts(api_client_for, user, tenant):
    contract = make_contract(user)
    colleague = UserFactory(tenant=tenant)
    assert api_client_for(colleague).get(detail_url(contract)).status_code == 200


def test_another_tenants_contract_is_404(client, other_tenant):
    foreign = ContractFactory(created_by=UserFactory(tenant=other_tenant))
    response = client.get(detail_url(foreign))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert client.patch(detail_url(foreign), {"title": "mine"}, format="json").status_code == 404
    with rls.tenant_scope(other_tenant):
        foreign.refresh_from_db()
    assert foreign.title != "mine"


def test_missing_and_malformed_ids_are_404(client, user):
    assert client.get(detail_url(uuid.uuid4())).status_code == 404
    response = client.get(f"{CONTRACTS}not-a-uuid/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


def test_detail_requires_authentication(api_client, user):
    contract = make_contract(user)
    assert api_client.get(detail_url(contract)).status_code == 401
    assert api_client.get(CONTRACTS).status_code == 401


# --------------------------------------------------------------------------- update


def test_patch_draft_updates_and_audits_changes(client, user):
    contract = make_contract(user, title="Old title", value=Decimal("600000.00"), currency="USD")
    contract_hash_before = contract.content_hash

    response = client.patch(
        detail_url(contract),
        {"title": "New title", "value": 700000, "currency": "eur"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["title"] == "New title"
    assert body["value"] == "700000.00"
    assert body["currency"] == "EUR"
    contract.refresh_from_db()
    assert contract.title == "New title"
    assert contract.value == Decimal("700000.00")
    row = AuditLog.objects.get(action="contract_updated", resource_id=str(contract.pk))
    assert row.actor_id == user.pk
    assert row.tenant_id == user.tenant_id
    assert row.changes == {
        "title": ["Old title", "New title"],
        "value": ["600000.00", "700000.00"],
        "currency": ["USD", "EUR"],
        "revision": [1, 2],
        "content_hash": [contract_hash_before, body["content_hash"]],
    }
    assert body["revision"] == 2


def test_patch_with_dates_audits_iso_strings(client, user):
    contract = make_contract(user)
    response = client.patch(
        detail_url(contract), {"start_date": "2025-03-01", "end_date": "2026-03-01"}, format="json"
    )
    assert response.status_code == 200, response.json()
    row = AuditLog.objects.get(action="contract_updated")
    assert row.changes | {"content_hash": None} == {
        "start_date": [None, "2025-03-01"],
        "end_date": [None, "2026-03-01"],
        "revision": [1, 2],
        "content_hash": None,
    }


def test_patch_same_value_writes_no_audit_row(client, user):
    contract = make_contract(user, value=Decimal("600000.00"))
    response = client.patch(detail_url(contract), {"value": 600000}, format="json")
    assert response.status_code == 200
    assert not AuditLog.objects.filter(action="contract_updated").exists()


def test_patch_text_is_audited_by_digest(client, user):
    contract = make_contract(user)
    assert (
        client.patch(detail_url(contract), {"text": "new text"}, format="json").status_code == 200
    )
    changes = AuditLog.objects.get(action="contract_updated").changes
    assert set(changes) == {"text_sha256", "revision", "content_hash"}
    old_digest, new_digest = changes["text_sha256"]
    assert old_digest != new_digest
    assert len(new_digest) == 64


def test_patch_ignores_read_only_fields(client, user, other_tenant):
    contract = make_contract(user)
    response = client.patch(
        detail_url(contract),
        {"status": "approved", "tenant": str(other_tenant.pk), "created_by": str(uuid.uuid4())},
        format="json",
    )
    assert response.status_code == 200
    contract.refresh_from_db()
    assert contract.status == ContractStatus.DRAFT
    assert contract.tenant_id == user.tenant_id
    assert contract.created_by_id == user.pk
    assert not AuditLog.objects.filter(action="contract_updated").exists()


def test_patch_end_date_before_existing_start_date_is_400(client, user):
    contract = make_contract(user, start_date="2025-06-01", end_date="2025-12-31")
    assert_400_on(
        client.patch(detail_url(contract), {"end_date": "2025-01-01"}, format="json"), "end_date"
    )
    contract.refresh_from_db()
    assert contract.end_date.isoformat() == "2025-12-31"


@pytest.mark.parametrize(
    ("field", "value"),
    [("value", "-1"), ("value", "1.001"), ("currency", "ABC"), ("metadata", []), ("title", "")],
)
def test_patch_validates_like_create(client, user, field, value):
    contract = make_contract(user)
    assert_400_on(client.patch(detail_url(contract), {field: value}, format="json"), field)


def test_patch_of_an_approved_contract_is_409_locked(client, user):
    contract = make_contract(user, title="Frozen")
    Contract.objects.filter(pk=contract.pk).update(status=ContractStatus.APPROVED)

    response = client.patch(detail_url(contract), {"title": "Changed"}, format="json")

    assert response.status_code == 409, response.json()
    assert response.json()["code"] == "contract_locked"
    contract.refresh_from_db()
    assert (contract.title, contract.revision) == ("Frozen", 1)
    assert not AuditLog.objects.filter(action="contract_updated").exists()


@pytest.mark.parametrize("status", [ContractStatus.REJECTED, ContractStatus.CANCELLED])
def test_patch_of_a_closed_contract_is_a_draft_edit(client, user, status):
    """docs/api.md: a rejected or cancelled contract is edited like a draft (then restarted)."""
    contract = make_contract(user, title="Closed")
    Contract.objects.filter(pk=contract.pk).update(status=status)

    response = client.patch(detail_url(contract), {"title": "Changed"}, format="json")

    assert response.status_code == 200, response.json()
    assert (response.json()["status"], response.json()["revision"]) == (status, 2)


def test_put_and_delete_are_405(client, user):
    contract = make_contract(user)
    put = client.put(detail_url(contract), {"title": "x", "contract_type": "MSA"}, format="json")
    assert put.status_code == 405
    assert put.json()["code"] == "method_not_allowed"
    delete = client.delete(detail_url(contract))
    assert delete.status_code == 405
    assert Contract.objects.filter(pk=contract.pk).exists()
    assert client.delete(CONTRACTS).status_code == 405
