"""Workflow semantics through the API: stage types (parallel, optional, quorum, all, any, named)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import UserFactory
from tests.fixtures import (
    act,
    approved,
    audit_actions,
    contract_status,
    create_contract,
    error_code,
    row_statuses,
    rows_of,
    stage_statuses,
    status_of,
)
from tests.fixtures import api_stage as stage

pytestmark = pytest.mark.django_db


# --- stage types ----------------------------------------------------------------------------


def test_parallel_stages_run_together_and_the_next_waits_for_both(
    define, requester_client, role_holder, api_client_for
):
    clients = {
        name: api_client_for(role_holder(name)) for name in ("legal", "finance", "security", "ceo")
    }
    define(
        [
            stage("Legal", 1, ["legal"]),
            stage("Finance", 2, ["finance"]),
            stage("Security", 2, ["security"]),
            stage("Exec", 3, ["ceo"]),
        ]
    )
    contract = create_contract(requester_client)
    assert act(clients["finance"], contract["id"]).status_code == 403
    status = approved(clients["legal"], contract["id"])
    assert status["current_stage"] == 2
    assert stage_statuses(status) == {
        "Legal": "approved",
        "Finance": "pending",
        "Security": "pending",
        "Exec": "waiting",
    }
    status = approved(clients["security"], contract["id"])
    assert stage_statuses(status)["Exec"] == "waiting"
    assert status["current_stage"] == 2
    assert act(clients["ceo"], contract["id"]).status_code == 403

    status = approved(clients["finance"], contract["id"])
    assert status["current_stage"] == 3
    assert stage_statuses(status) == {
        "Legal": "approved",
        "Finance": "approved",
        "Security": "approved",
        "Exec": "pending",
    }
    assert approved(clients["ceo"], contract["id"])["status"] == "completed"
    assert audit_actions().count("stage_started") == 4


def test_required_rejection_in_a_parallel_stage_cancels_its_sibling(
    define, requester_client, role_holder, api_client_for
):
    legal, finance = role_holder("legal"), role_holder("finance")
    define([stage("Legal", 1, ["legal"]), stage("Finance", 1, ["finance"])])
    contract = create_contract(requester_client)
    response = act(api_client_for(legal), contract["id"], "reject", comments="No")
    status = response.json()
    assert status["status"] == "rejected"
    assert stage_statuses(status) == {"Legal": "rejected", "Finance": "cancelled"}
    assert row_statuses(status, "Finance") == {"finance": "cancelled"}
    assert contract_status(requester_client, contract["id"]) == "rejected"
    assert act(api_client_for(finance), contract["id"]).status_code == 409


def test_optional_stage_rejection_is_recorded_and_the_workflow_goes_on(
    define, requester_client, role_holder, api_client_for
):
    advisor, legal = role_holder("advisor"), role_holder("legal")
    define(
        [
            stage("Advisory", 1, ["advisor", "legal"], approval_type="any", is_required=False),
            stage("Legal", 2, ["legal"]),
        ]
    )
    contract = create_contract(requester_client)
    response = act(api_client_for(advisor), contract["id"], "reject", comments="Not keen")
    assert response.status_code == 200, response.json()
    status = response.json()
    assert status["status"] == "active"
    assert status["current_stage"] == 2
    assert stage_statuses(status) == {"Advisory": "rejected", "Legal": "pending"}
    assert row_statuses(status, "Advisory") == {"advisor": "rejected", "legal": "skipped"}
    assert {row["comments"] for row in rows_of(status, "Advisory")} == {"Not keen", ""}
    assert contract_status(requester_client, contract["id"]) == "in_review"
    assert "approval_rejected" in audit_actions()

    assert approved(api_client_for(legal), contract["id"])["status"] == "completed"
    assert contract_status(requester_client, contract["id"]) == "approved"


def test_optional_last_stage_rejection_still_completes(
    define, requester_client, role_holder, api_client_for
):
    legal, advisor = role_holder("legal"), role_holder("advisor")
    define([stage("Legal", 1, ["legal"]), stage("Advisory", 2, ["advisor"], is_required=False)])
    contract = create_contract(requester_client)
    approved(api_client_for(legal), contract["id"])
    status = act(api_client_for(advisor), contract["id"], "reject").json()
    assert status["status"] == "completed"
    assert stage_statuses(status) == {"Legal": "approved", "Advisory": "rejected"}
    assert contract_status(requester_client, contract["id"]) == "approved"


@pytest.fixture
def quorum_setup(define, requester_client, role_holder, api_client_for):
    clients = {name: api_client_for(role_holder(name)) for name in ("a", "b", "c", "ceo")}
    define(
        [
            stage("Committee", 1, ["a", "b", "c"], approval_type="quorum", min_approvals=2),
            stage("Exec", 2, ["ceo"]),
        ]
    )
    return clients, create_contract(requester_client)


def test_quorum_completes_at_min_approvals_and_skips_the_rest(quorum_setup):
    clients, contract = quorum_setup
    status = approved(clients["a"], contract["id"])
    assert stage_statuses(status)["Committee"] == "pending"
    assert row_statuses(status, "Committee") == {"a": "approved", "b": "pending", "c": "pending"}
    status = approved(clients["b"], contract["id"])
    assert stage_statuses(status) == {"Committee": "approved", "Exec": "pending"}
    assert row_statuses(status, "Committee") == {"a": "approved", "b": "approved", "c": "skipped"}
    assert act(clients["c"], contract["id"]).status_code == 409
    assert approved(clients["ceo"], contract["id"])["status"] == "completed"


def test_quorum_with_one_rejection_can_still_pass(quorum_setup):
    clients, contract = quorum_setup
    status = act(clients["a"], contract["id"], "reject").json()
    assert status["status"] == "active"
    assert row_statuses(status, "Committee") == {"a": "rejected", "b": "pending", "c": "pending"}
    approved(clients["b"], contract["id"])
    status = approved(clients["c"], contract["id"])
    assert stage_statuses(status) == {"Committee": "approved", "Exec": "pending"}


def test_quorum_that_can_no_longer_be_reached_rejects(quorum_setup, requester_client):
    clients, contract = quorum_setup
    assert act(clients["a"], contract["id"], "reject").json()["status"] == "active"
    status = act(clients["b"], contract["id"], "reject").json()
    assert status["status"] == "rejected"
    assert stage_statuses(status) == {"Committee": "rejected", "Exec": "cancelled"}
    assert row_statuses(status, "Committee") == {
        "a": "rejected",
        "b": "rejected",
        "c": "cancelled",
    }
    assert contract_status(requester_client, contract["id"]) == "rejected"
    assert act(clients["c"], contract["id"]).status_code == 409


def test_all_stage_with_two_roles_needs_both(define, requester_client, role_holder, api_client_for):
    legal, finance = api_client_for(role_holder("legal")), api_client_for(role_holder("finance"))
    define([stage("Joint", 1, ["legal", "finance"])])
    contract = create_contract(requester_client)
    status = approved(legal, contract["id"])
    assert status["status"] == "active"
    assert row_statuses(status, "Joint") == {"legal": "approved", "finance": "pending"}
    assert act(legal, contract["id"]).status_code == 409
    status = approved(finance, contract["id"])
    assert status["status"] == "completed"
    assert row_statuses(status, "Joint") == {"legal": "approved", "finance": "approved"}


def test_any_stage_rejection_rejects_the_required_stage(
    define, requester_client, role_holder, api_client_for
):
    """Orchestrator docstring: on `any` the first decision settles the stage."""
    finance, cfo = role_holder("finance"), role_holder("cfo")
    define([stage("Finance", 1, ["finance", "cfo"], approval_type="any")])
    contract = create_contract(requester_client)
    status = act(api_client_for(cfo), contract["id"], "reject").json()
    assert status["status"] == "rejected"
    assert row_statuses(status, "Finance") == {"finance": "cancelled", "cfo": "rejected"}
    assert contract_status(requester_client, contract["id"]) == "rejected"
    assert act(api_client_for(finance), contract["id"]).status_code == 409


def test_named_approver(define, requester_client, role_holder, api_client_for, tenant):
    named = UserFactory(tenant=tenant)
    legal = role_holder("legal")
    define([stage("Counsel", 1, [f"user:{named.pk}"])])
    contract = create_contract(requester_client)
    assert act(api_client_for(legal), contract["id"]).status_code == 403
    status = approved(api_client_for(named), contract["id"])
    assert status["status"] == "completed"
    row = status["stages"][0]["approvals"][0]
    assert (row["approver"], row["assigned_to"], row["decided_by"]) == (
        str(named.pk),
        str(named.pk),
        str(named.pk),
    )


def test_expired_role_holder_cannot_act(define, requester_client, role_holder, api_client_for):
    expired = role_holder("legal", expires_at=timezone.now() - timedelta(seconds=1))
    current = role_holder("legal", expires_at=timezone.now() + timedelta(days=1))
    define([stage("Legal", 1, ["legal"])])
    contract = create_contract(requester_client)
    assert error_code(act(api_client_for(expired), contract["id"]), 403)
    assert row_statuses(status_of(requester_client, contract["id"]), "Legal") == {
        "legal": "pending"
    }
    expired_inbox = api_client_for(expired).get("/api/approvals/pending/").json()
    assert expired_inbox["count"] == 0
    assert approved(api_client_for(current), contract["id"])["status"] == "completed"


def test_bad_action_is_400(define, requester_client, role_holder, api_client_for):
    legal = api_client_for(role_holder("legal"))
    define([stage("Legal", 1, ["legal"])])
    contract = create_contract(requester_client)
    for payload in ({"action": "approve-all"}, {"action": ""}, {}, {"action": ["approve"]}):
        response = legal.post(f"/api/contracts/{contract['id']}/approve/", payload, format="json")
        assert "action" in error_code(response, 400)["fields"]
    assert row_statuses(status_of(requester_client, contract["id"]), "Legal") == {
        "legal": "pending"
    }
