"""PATCH /api/contracts/{id}/: drafts edited and audited, approved contracts locked."""

import uuid
from decimal import Decimal

import pytest

from audit.models import AuditLog
from contracts.models import Contract, ContractStatus
from tests.fixtures import CONTRACTS, detail_url
from tests.fixtures import contracts_assert_400_on as assert_400_on
from tests.fixtures import contracts_make_contract as make_contract

pytestmark = pytest.mark.django_db


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
