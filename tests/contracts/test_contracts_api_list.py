"""GET /api/contracts/ and its detail: pages, filters, search, ordering, one tenant's."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from contracts.models import Contract, ContractStatus
from core import rls
from tests.factories import ContractFactory, UserFactory
from tests.fixtures import CONTRACTS, detail_url
from tests.fixtures import contracts_assert_400_on as assert_400_on
from tests.fixtures import contracts_make_contract as make_contract

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------- list


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
