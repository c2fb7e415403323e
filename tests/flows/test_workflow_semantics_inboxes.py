"""Workflow semantics through the API: the approvers' inboxes."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from approvals.models import WorkflowStageApproval
from tests.factories import UserFactory, UserRoleFactory
from tests.fixtures import DEFINITIONS, HIGH_VALUE, approved, create_contract
from tests.fixtures import api_stage as stage

pytestmark = pytest.mark.django_db


# --- inboxes --------------------------------------------------------------------------------


def inbox(client, path="/api/approvals/pending/", **params) -> list[dict]:
    response = client.get(path, params)
    assert response.status_code == 200, response.json()
    return response.json()["results"]


def test_inboxes(define, role_holder, api_client_for, tenant, other_tenant):
    legal, colleague = role_holder("legal"), role_holder("legal")
    named = UserFactory(tenant=tenant)
    # A creator holding the role never sees rows on their own contracts.
    creator = role_holder("legal")
    creator_client = api_client_for(creator)
    define(
        [stage("Review", 1, ["legal", f"user:{named.pk}"], sla_hours=24), stage("Exec", 2, ["ceo"])]
    )
    own = create_contract(creator_client, title="Creator's own", value="123.40", currency="EUR")
    theirs = create_contract(api_client_for(legal), title="Legal's own")

    legal_client, named_client = api_client_for(legal), api_client_for(named)
    rows = inbox(legal_client)
    assert [row["contract"]["id"] for row in rows] == [own["id"]]
    row = rows[0]
    assert row["contract"] == {
        "id": own["id"],
        "title": "Creator's own",
        "contract_type": "MSA",
        "value": "123.40",
        "currency": "EUR",
    }
    assert row["stage_name"] == "Review"
    assert row["status"] == "pending"
    assert row["approver"] == "legal"
    assert row["is_overdue"] is False
    assert datetime.fromisoformat(row["due_at"]) > timezone.now() + timedelta(hours=23)

    assert {row["contract"]["id"] for row in inbox(creator_client)} == {theirs["id"]}
    assert {row["contract"]["id"] for row in inbox(creator_client, "/api/approvals/")} == {
        theirs["id"]
    }
    named_rows = inbox(named_client)
    assert {(row["contract"]["id"], row["approver"]) for row in named_rows} == {
        (own["id"], str(named.pk)),
        (theirs["id"], str(named.pk)),
    }
    assert inbox(api_client_for(UserFactory(tenant=tenant))) == []
    assert inbox(api_client_for(UserFactory(tenant=other_tenant)), "/api/approvals/") == []

    # The decider sees the decided row in the list (not in pending); a colleague does not.
    approved(legal_client, own["id"], comments="ok")
    assert inbox(legal_client) == []
    decided = inbox(legal_client, "/api/approvals/", status="approved")
    assert [(row["contract"]["id"], row["status"]) for row in decided] == [(own["id"], "approved")]
    assert inbox(legal_client, "/api/approvals/", status="pending") == []
    assert inbox(api_client_for(colleague), "/api/approvals/", status="approved") == []
    assert {row["contract"]["id"] for row in inbox(api_client_for(colleague))} == {theirs["id"]}

    # Overdue rows say so.
    WorkflowStageApproval.objects.filter(status="pending").update(
        due_at=timezone.now() - timedelta(hours=1)
    )
    assert {row["is_overdue"] for row in inbox(named_client)} == {True}
    assert {row["is_overdue"] for row in inbox(legal_client, "/api/approvals/")} == {False}


def test_skipped_rows_leave_the_inbox(define, requester_client, role_holder, api_client_for):
    finance, cfo = api_client_for(role_holder("finance")), api_client_for(role_holder("cfo"))
    define(
        [
            stage("Finance", 1, ["finance", "cfo"], approval_type="any"),
            stage("Exec", 2, ["ceo"]),
        ]
    )
    contract = create_contract(requester_client)
    assert len(inbox(finance)) == 1
    approved(cfo, contract["id"])
    assert inbox(finance) == []
    assert [row["status"] for row in inbox(finance, "/api/approvals/")] == []
    assert inbox(cfo, "/api/approvals/", status="approved")[0]["contract"]["id"] == contract["id"]


def test_high_value_example_through_the_inbox(
    admin_client, requester_client, role_holder, api_client_for
):
    response = admin_client.post(DEFINITIONS, HIGH_VALUE, format="json")
    assert response.status_code == 201
    legal = api_client_for(role_holder("legal"))
    contract = create_contract(requester_client)
    (row,) = inbox(legal)
    approved(legal, contract["id"], approval=row["id"])
    assert inbox(legal) == []


def test_status_lists_approvals_in_the_definitions_approver_order(api_client_for, tenant):
    """Rows opened together share created_at; the status keeps the configured order."""
    admin = UserFactory(tenant=tenant, is_tenant_admin=True)
    roles = ["zeta", "alpha", "mid", "beta"]
    for slug in roles:
        UserRoleFactory(user=UserFactory(tenant=tenant), role=slug)
    body = {
        "name": "Ordered",
        "trigger_conditions": {},
        "stages": [{"stage_name": "All", "sequence": 1, "approvers": roles}],
    }
    assert (
        api_client_for(admin).post("/api/workflows/config/", body, format="json").status_code == 201
    )
    requester = UserFactory(tenant=tenant)
    contract = (
        api_client_for(requester)
        .post("/api/contracts/", {"title": "T", "contract_type": "NDA"}, format="json")
        .json()
    )
    status = api_client_for(requester).get(f"/api/contracts/{contract['id']}/workflow/status/")
    assert [row["approver"] for row in status.json()["stages"][0]["approvals"]] == roles
