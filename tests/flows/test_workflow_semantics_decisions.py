"""Workflow semantics through the API: delegation, and which pending approval a decision is for."""

import uuid

import pytest

from approvals.models import WorkflowStageApproval
from audit.models import AuditLog
from tests.factories import UserFactory, UserRoleFactory
from tests.fixtures import (
    act,
    approved,
    audit_actions,
    cancel,
    create_contract,
    error_code,
    row_history,
    row_statuses,
    status_of,
)
from tests.fixtures import api_stage as stage

pytestmark = pytest.mark.django_db


# --- delegation -----------------------------------------------------------------------------


def test_invalid_delegations_are_400_and_change_nothing(
    define, requester_client, requester, role_holder, api_client_for, other_tenant, tenant
):
    legal = role_holder("legal")
    legal_client = api_client_for(legal)
    define([stage("Legal", 1, ["legal"])])
    contract = create_contract(requester_client)
    before = status_of(requester_client, contract["id"])
    audit_before = AuditLog.objects.count()
    inactive = UserFactory(tenant=tenant, is_active=False)
    targets = {
        "other tenant": UserFactory(tenant=other_tenant).pk,
        "creator": requester.pk,
        "self": legal.pk,
        "unknown": uuid.uuid4(),
        "inactive": inactive.pk,
        "missing": None,
    }
    for label, target in targets.items():
        extra = {} if target is None else {"delegate_to": str(target)}
        response = act(legal_client, contract["id"], "delegate", **extra)
        body = error_code(response, 400)
        assert "delegate_to" in body["fields"], (label, body)
    assert status_of(requester_client, contract["id"]) == before
    assert AuditLog.objects.count() == audit_before
    assert WorkflowStageApproval.objects.count() == 1


def test_delegate_acts_and_can_delegate_again(
    define, requester_client, role_holder, api_client_for, tenant
):
    legal = role_holder("legal")
    first, second = UserFactory(tenant=tenant), UserFactory(tenant=tenant)
    define([stage("Legal", 1, ["legal"]), stage("Exec", 2, ["ceo"])])
    contract = create_contract(requester_client)
    status = act(api_client_for(legal), contract["id"], "delegate", delegate_to=str(first.pk))
    rows = status.json()["stages"][0]["approvals"]
    assert [(row["status"], row["delegated_to"], row["assigned_to"]) for row in rows] == [
        ("delegated", str(first.pk), None),
        ("pending", None, str(first.pk)),
    ]
    assert rows[1]["approver"] == "legal"
    status = act(api_client_for(first), contract["id"], "delegate", delegate_to=str(second.pk))
    assert row_history(status.json(), "Legal") == ["delegated", "delegated", "pending"]
    assert act(api_client_for(first), contract["id"]).status_code == 409
    status = approved(api_client_for(second), contract["id"])
    assert status["current_stage"] == 2
    assert row_history(status, "Legal") == ["delegated", "delegated", "approved"]
    assert audit_actions().count("approval_delegated") == 2


# --- choosing among several pending approvals -----------------------------------------------


def test_approval_id_needed_when_the_caller_holds_several(
    define, requester_client, tenant, api_client_for
):

    both = UserFactory(tenant=tenant)
    UserRoleFactory(user=both, role="legal")
    UserRoleFactory(user=both, role="finance")
    client = api_client_for(both)
    # One person deciding two rows needs a definition that allows it (tiny teams).
    define(
        [stage("Joint", 1, ["legal", "finance"]), stage("Exec", 2, ["ceo"])],
        distinct_approvers=False,
    )
    contract = create_contract(requester_client)
    rows = status_of(requester_client, contract["id"])["stages"][0]["approvals"]
    ids = {row["approver"]: row["id"] for row in rows}

    body = error_code(act(client, contract["id"]), 400)
    message = " ".join(body["fields"]["approval"])
    assert ids["legal"] in message
    assert ids["finance"] in message
    assert row_statuses(status_of(requester_client, contract["id"]), "Joint") == {
        "legal": "pending",
        "finance": "pending",
    }

    # Someone else's row or an unknown id: 403; then a specific row of theirs works.
    assert act(client, contract["id"], approval=str(uuid.uuid4())).status_code == 403
    status = approved(client, contract["id"], approval=ids["finance"])
    assert row_statuses(status, "Joint") == {"legal": "pending", "finance": "approved"}
    assert act(client, contract["id"], approval=ids["finance"]).status_code == 409
    # One pending row left: no id needed.
    status = approved(client, contract["id"])
    assert status["current_stage"] == 2
    assert act(client, contract["id"]).status_code == 409


def test_approval_of_another_stage_or_contract_is_refused(
    define, requester_client, role_holder, api_client_for
):
    legal = api_client_for(role_holder("legal"))
    define([stage("Legal", 1, ["legal"])])
    first = create_contract(requester_client)
    second = create_contract(requester_client)
    other_row = status_of(requester_client, second["id"])["stages"][0]["approvals"][0]["id"]
    assert act(legal, first["id"], approval=other_row).status_code == 403
    assert row_statuses(status_of(requester_client, second["id"]), "Legal") == {"legal": "pending"}
    assert row_statuses(status_of(requester_client, first["id"]), "Legal") == {"legal": "pending"}


def test_finished_workflow_is_409(define, requester_client, role_holder, api_client_for, tenant):
    legal = api_client_for(role_holder("legal"))
    define([stage("Legal", 1, ["legal"])])
    contract = create_contract(requester_client)
    approved(legal, contract["id"])
    for action in ("approve", "reject"):
        assert error_code(act(legal, contract["id"], action), 409)["code"] == (
            "workflow_not_active"
        )
    stand_in = UserFactory(tenant=tenant)
    response = act(legal, contract["id"], "delegate", delegate_to=str(stand_in.pk))
    assert error_code(response, 409)["code"] == "workflow_not_active"
    assert status_of(requester_client, contract["id"])["status"] == "completed"


def test_acting_on_a_contract_without_workflow_is_409_and_foreign_is_404(
    define, requester_client, role_holder, api_client_for, other_tenant
):
    legal = api_client_for(role_holder("legal"))
    draft = create_contract(requester_client)
    assert draft["workflow"] is None
    assert act(legal, draft["id"]).status_code == 409
    theirs = create_contract(api_client_for(UserFactory(tenant=other_tenant)))
    assert act(legal, theirs["id"]).status_code == 404
    assert legal.get(f"/api/contracts/{theirs['id']}/workflow/status/").status_code == 404
    assert cancel(legal, theirs["id"]).status_code == 404
