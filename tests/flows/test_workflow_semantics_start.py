"""Workflow semantics through the API: manual start, restart, cancel, the status document."""

import uuid
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from approvals.models import WorkflowInstance, WorkflowStageApproval
from audit.models import AuditLog
from tests.factories import UserFactory
from tests.fixtures import (
    DEFINITIONS,
    act,
    approved,
    audit_actions,
    cancel,
    contract_status,
    create_contract,
    error_code,
    row_statuses,
    stage_statuses,
    status_of,
)
from tests.fixtures import api_stage as stage
from tests.fixtures import api_start as start

pytestmark = pytest.mark.django_db


STATUS_KEYS = {
    "id",
    "contract",
    "definition",
    "status",
    "current_stage",
    "started_at",
    "completed_at",
    "stages",
}


STAGE_KEYS = {"sequence", "stage_name", "approval_type", "status", "due_at", "approvals"}


APPROVAL_KEYS = {
    "id",
    "approver",
    "assigned_to",
    "status",
    "decided_by",
    "decided_at",
    "comments",
    "revision",
    "due_at",
    "is_overdue",
    "delegated_to",
}


# --- manual start ---------------------------------------------------------------------------


def test_manual_start_by_match_engine_and_by_definition(
    define, requester_client, admin_client, role_holder
):
    role_holder("legal")
    nda = define([stage("NDA Review", 1, ["legal"])], {"contract_type": "NDA"}, priority=10)
    huge = define([stage("Board", 1, ["ceo"])], {"value__gte": 10**9})
    contract = create_contract(requester_client, value="10")
    assert contract["status"] == "draft"
    assert contract["workflow"] is None

    response = start(requester_client, contract["id"])
    body = error_code(response, 400)
    assert "workflow_definition" in body["fields"]
    assert not WorkflowInstance.objects.exists()

    # Only `workflows.manage` may name a definition: nobody routes around the matched chain.
    body = error_code(start(requester_client, contract["id"], workflow_definition=huge["id"]), 403)
    assert "workflows.manage" in body["detail"]
    # An explicit definition starts even when its rules do not match the contract.
    response = start(admin_client, contract["id"], workflow_definition=huge["id"])
    assert response.status_code == 201, response.json()
    status = response.json()
    assert status["definition"] == {"id": huge["id"], "name": huge["name"], "version": 1}
    assert status["status"] == "active"
    assert status["current_stage"] == 1
    assert contract_status(requester_client, contract["id"]) == "in_review"
    detail = requester_client.get(f"/api/contracts/{contract['id']}/").json()
    assert detail["workflow"] == {
        "id": status["id"],
        "definition": status["definition"],
        "status": "active",
        "current_stage": 1,
    }

    for client, payload in (
        (requester_client, {}),
        (admin_client, {"workflow_definition": nda["id"]}),
    ):
        body = error_code(start(client, contract["id"], **payload), 409)
        assert body["code"] == "workflow_active"
    assert WorkflowInstance.objects.count() == 1

    # The match engine picks the NDA flow once the draft is an NDA.
    other = create_contract(requester_client, value="10")
    patched = requester_client.patch(
        f"/api/contracts/{other['id']}/", {"contract_type": "NDA"}, format="json"
    )
    assert patched.status_code == 200, patched.json()
    response = start(requester_client, other["id"])
    assert response.status_code == 201, response.json()
    assert response.json()["definition"]["id"] == nda["id"]
    assert audit_actions().count("workflow_started") == 2


def test_start_rejects_foreign_and_inactive_definitions(
    define, requester_client, admin_client, other_tenant, api_client_for
):
    inactive = define([stage("Legal", 1, ["legal"])], {"value__gte": 10**9}, is_active=False)
    stranger_admin = UserFactory(tenant=other_tenant, is_tenant_admin=True)
    response = api_client_for(stranger_admin).post(
        DEFINITIONS,
        {"name": "Theirs", "stages": [stage("Legal", 1, ["legal"])]},
        format="json",
    )
    theirs = response.json()
    contract = create_contract(requester_client, value="10")
    for definition_id in (theirs["id"], inactive["id"], str(uuid.uuid4()), "nope"):
        response = start(admin_client, contract["id"], workflow_definition=definition_id)
        body = error_code(response, 400)
        assert "workflow_definition" in body["fields"], body
    assert not WorkflowInstance.objects.exists()
    assert contract_status(requester_client, contract["id"]) == "draft"
    # Another tenant's contract is a 404 whatever the body says.
    their_contract = create_contract(api_client_for(stranger_admin), value="10")
    response = start(requester_client, their_contract["id"], workflow_definition=theirs["id"])
    error_code(response, 404)


def test_restart_after_cancel(define, requester_client, role_holder, api_client_for):
    legal = api_client_for(role_holder("legal"))
    define([stage("Legal", 1, ["legal"])])
    contract = create_contract(requester_client)
    first = status_of(requester_client, contract["id"])
    assert cancel(requester_client, contract["id"]).status_code == 200
    assert contract_status(requester_client, contract["id"]) == "cancelled"

    response = start(requester_client, contract["id"])
    assert response.status_code == 201, response.json()
    second = response.json()
    assert second["id"] != first["id"]
    assert second["status"] == "active"
    assert row_statuses(second, "Legal") == {"legal": "pending"}
    assert contract_status(requester_client, contract["id"]) == "in_review"
    assert status_of(requester_client, contract["id"])["id"] == second["id"]
    assert approved(legal, contract["id"])["status"] == "completed"
    assert contract_status(requester_client, contract["id"]) == "approved"
    # An approved contract does not start again.
    body = error_code(start(requester_client, contract["id"]), 409)
    assert body["code"] == "contract_not_startable"
    assert WorkflowInstance.objects.filter(contract_id=contract["id"]).count() == 2


# --- cancel ---------------------------------------------------------------------------------


def test_cancel_by_creator_or_admin_only(
    define, requester_client, admin_client, role_holder, api_client_for, tenant
):
    legal = role_holder("legal")
    define(
        [stage("Legal", 1, ["legal", "finance"]), stage("Exec", 2, ["ceo"])],
    )
    contract = create_contract(requester_client)
    for outsider in (legal, UserFactory(tenant=tenant)):
        body = error_code(cancel(api_client_for(outsider), contract["id"]), 403)
        assert body["code"] == "permission_denied"
    status = status_of(requester_client, contract["id"])
    assert status["status"] == "active"
    assert row_statuses(status, "Legal") == {"legal": "pending", "finance": "pending"}

    approved(api_client_for(legal), contract["id"])
    response = cancel(requester_client, contract["id"], reason="Deal fell through")
    assert response.status_code == 200, response.json()
    status = response.json()
    assert status["status"] == "cancelled"
    assert status["current_stage"] is None
    assert status["completed_at"] is not None
    assert row_statuses(status, "Legal") == {"legal": "approved", "finance": "cancelled"}
    assert stage_statuses(status) == {"Legal": "cancelled", "Exec": "cancelled"}
    assert contract_status(requester_client, contract["id"]) == "cancelled"
    row = AuditLog.objects.get(action="workflow_cancelled")
    assert row.changes["reason"] == [None, "Deal fell through"]
    assert not WorkflowStageApproval.objects.filter(status="pending").exists()

    assert error_code(cancel(requester_client, contract["id"]), 409)["code"] == (
        "workflow_not_active"
    )
    assert act(api_client_for(legal), contract["id"]).status_code == 409

    second = create_contract(requester_client)
    response = cancel(admin_client, second["id"])
    assert response.status_code == 200, response.json()
    assert contract_status(requester_client, second["id"]) == "cancelled"
    assert audit_actions().count("workflow_cancelled") == 2


def test_cancel_of_a_contract_that_never_ran_is_409(define, requester_client):
    contract = create_contract(requester_client)
    assert contract["workflow"] is None
    assert cancel(requester_client, contract["id"]).status_code == 409
    assert requester_client.get(
        f"/api/contracts/{contract['id']}/workflow/status/"
    ).status_code == (404)


# --- status document ------------------------------------------------------------------------


def test_status_document_shape(define, requester_client, role_holder, api_client_for, tenant):
    legal = role_holder("legal")
    named = UserFactory(tenant=tenant)
    definition = define(
        [
            stage("Legal Review", 1, ["legal", f"user:{named.pk}"], sla_hours=48),
            stage("Exec", 2, ["ceo"], approval_type="any"),
        ],
        name="Shape",
    )
    before = timezone.now()
    contract = create_contract(requester_client)
    status = status_of(requester_client, contract["id"])
    assert set(status) >= STATUS_KEYS
    assert status["contract"] == contract["id"]
    assert status["definition"] == {"id": definition["id"], "name": "Shape", "version": 1}
    assert status["status"] == "active"
    assert status["current_stage"] == 1
    assert status["completed_at"] is None
    started = datetime.fromisoformat(status["started_at"])
    assert started.tzinfo is not None

    first, second = status["stages"]
    for item in status["stages"]:
        assert set(item) >= STAGE_KEYS
    assert (first["sequence"], first["stage_name"], first["approval_type"], first["status"]) == (
        1,
        "Legal Review",
        "all",
        "pending",
    )
    due = datetime.fromisoformat(first["due_at"])
    assert timedelta(hours=48) <= due - before <= timedelta(hours=48, seconds=30)
    assert (second["status"], second["due_at"], second["approvals"]) == ("waiting", None, [])

    rows = {row["approver"]: row for row in first["approvals"]}
    role_row, named_row = rows["legal"], rows[str(named.pk)]
    for row in (role_row, named_row):
        assert set(row) >= APPROVAL_KEYS
        assert row["status"] == "pending"
        assert row["decided_by"] is None
        assert row["decided_at"] is None
        assert row["comments"] == ""
        assert row["due_at"] == first["due_at"]
        assert row["is_overdue"] is False
        assert row["delegated_to"] is None
    assert (role_row["approver"], role_row["assigned_to"]) == ("legal", None)
    assert (named_row["approver"], named_row["assigned_to"]) == (str(named.pk), str(named.pk))

    decided = approved(api_client_for(legal), contract["id"], comments="Clause 7 fixed")
    role_row = next(row for row in decided["stages"][0]["approvals"] if row["approver"] == "legal")
    assert role_row["status"] == "approved"
    assert role_row["decided_by"] == str(legal.pk)
    assert role_row["comments"] == "Clause 7 fixed"
    assert datetime.fromisoformat(role_row["decided_at"]) >= before

    # Past its due date a pending row is overdue; a decided one never is.
    WorkflowStageApproval.objects.update(due_at=timezone.now() - timedelta(minutes=1))
    rows = status_of(requester_client, contract["id"])["stages"][0]["approvals"]
    assert {row["approver"]: (row["status"], row["is_overdue"]) for row in rows} == {
        "legal": ("approved", False),
        str(named.pk): ("pending", True),
    }
