"""docs/api.md "Approval integrity" through the API: request changes, edits while paused,
resubmit and its reset policy, and their audit rows and notifications.
"""

import uuid
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from approvals.models import SLABreach, WorkflowInstance, WorkflowStageApproval
from notifications.models import Notification
from tests.factories import UserFactory
from tests.fixtures import (
    act,
    approved,
    audit,
    cancel,
    contract_status,
    create_contract,
    error_code,
    patch,
    post,
    row_statuses,
    rows_of,
    stage_statuses,
    status_of,
)
from tests.fixtures import api_stage as stage
from tests.fixtures import integrity_define as define

pytestmark = pytest.mark.django_db


def notified(notification_type) -> list:
    return list(
        Notification.objects.filter(notification_type=notification_type).values_list(
            "recipient_id", flat=True
        )
    )


def shift_back(queryset, fields, hours) -> None:
    """Move ``fields`` of every row ``hours`` into the past, as if that time had passed."""
    for row in queryset:
        values = {name: getattr(row, name) for name in fields if getattr(row, name) is not None}
        type(row).objects.filter(pk=row.pk).update(
            **{name: value - timedelta(hours=hours) for name, value in values.items()}
        )


# --- request changes and resubmit ----------------------------------------------------------


@pytest.fixture
def paused_review(admin_client, requester_client, role_holder, api_client_for):
    """Legal approved, Finance half decided (finance approved) when treasury asks for changes."""

    def make(legal_policy="never", finance_policy="never"):
        people = {name: role_holder(name) for name in ("legal", "finance", "treasury", "ceo")}
        clients = {name: api_client_for(user) for name, user in people.items()}
        define(
            admin_client,
            [
                stage("Legal", 1, ["legal"], sla_hours=48, reset_on_change=legal_policy),
                stage(
                    "Finance",
                    2,
                    ["finance", "treasury"],
                    sla_hours=24,
                    reset_on_change=finance_policy,
                ),
                stage("Exec", 3, ["ceo"], sla_hours=72),
            ],
        )
        contract = create_contract(requester_client)
        approved(clients["legal"], contract["id"])
        approved(clients["finance"], contract["id"])
        return people, clients, contract

    return make


def test_request_changes_pauses_the_review_until_resubmitted(
    paused_review, requester_client, requester, tenant, api_client_for, capable
):
    people, clients, contract = paused_review()
    contract_id = contract["id"]
    for comments in ({}, {"comments": ""}, {"comments": "   "}):
        body = error_code(act(clients["treasury"], contract_id, "request_changes", **comments), 400)
        assert "comments" in body["fields"]
    for outsider in (api_client_for(UserFactory(tenant=tenant)), clients["ceo"]):
        assert error_code(act(outsider, contract_id, "request_changes", comments="No"), 403)
    assert error_code(post(requester_client, contract_id, "resubmit"), 409)["code"] == (
        "not_changes_requested"
    )

    response = act(clients["treasury"], contract_id, "request_changes", comments="Cap liability")
    assert response.status_code == 200, response.json()
    status = response.json()
    assert status["status"] == "changes_requested"
    assert status["changes_requested"]["by"] == str(people["treasury"].pk)
    assert status["changes_requested"]["stage_name"] == "Finance"
    assert status["changes_requested"]["comments"] == "Cap liability"
    assert row_statuses(status, "Finance") == {"finance": "approved", "treasury": "pending"}
    assert contract_status(requester_client, contract_id) == "changes_requested"
    inbox = requester_client.get("/api/notifications/").json()["results"]
    (note,) = [item for item in inbox if item["notification_type"] == "changes_requested"]
    assert note["payload"]["comments"] == "Cap liability"
    assert notified("changes_requested") == [requester.pk]
    (row,) = audit("changes_requested")
    assert row.changes["status"] == ["active", "changes_requested"]
    assert row.changes["contract_status"] == ["in_review", "changes_requested"]
    assert row.changes["stage_name"] == [None, "Finance"]
    assert row.changes["comments"] == [None, "Cap liability"]

    # Nobody decides while the contract is with its requester.
    stand_in = UserFactory(tenant=tenant)
    for action, extra in (
        ("approve", {}),
        ("reject", {}),
        ("request_changes", {"comments": "again"}),
        ("delegate", {"delegate_to": str(stand_in.pk)}),
    ):
        body = error_code(act(clients["treasury"], contract_id, action, **extra), 409)
        assert body["code"] == "changes_requested"
    for outsider in (clients["treasury"], api_client_for(UserFactory(tenant=tenant))):
        assert error_code(post(outsider, contract_id, "resubmit"), 403)
    assert contract_status(requester_client, contract_id) == "changes_requested"

    # The SLA clock stops: a paused row past its due date is not breached; an active one is.
    other = create_contract(requester_client)
    past_due = timezone.now() - timedelta(hours=2)
    WorkflowStageApproval.objects.filter(status="pending").update(due_at=past_due)
    sla = capable("sla.manage")
    response = sla.post("/api/admin/sla-breaches/check_breaches/", {}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["breached"] == 1
    assert set(SLABreach.objects.values_list("approval__contract_id", flat=True)) == {
        uuid.UUID(other["id"])
    }

    # Five hours with the requester (the rows were there before the request).
    instance = WorkflowInstance.objects.get(pk=status["id"])
    shift_back(WorkflowInstance.objects.filter(pk=instance.pk), ["changes_requested_at"], hours=5)
    shift_back(instance.approvals.all(), ["created_at"], hours=5)
    treasury_row = instance.approvals.get(approver="treasury")
    response = post(capable("contracts.manage"), contract_id, "resubmit")
    assert response.status_code == 200, response.json()
    status = response.json()
    assert (status["status"], status["current_stage"], status["changes_requested"]) == (
        "active",
        2,
        None,
    )
    assert contract_status(requester_client, contract_id) == "in_review"
    # The requesting stage is re-opened: finance's approval is superseded, a fresh row assigned;
    # treasury's waiting row is the same one, due five hours later.
    assert sorted((row["approver"], row["status"]) for row in rows_of(status, "Finance")) == [
        ("finance", "pending"),
        ("finance", "superseded"),
        ("treasury", "pending"),
    ]
    assert row_statuses(status, "Legal") == {"legal": "approved"}
    treasury_row.refresh_from_db()
    moved = treasury_row.due_at - past_due
    assert timedelta(hours=5) <= moved <= timedelta(hours=5, minutes=1)
    assert notified("approval_reset") == [people["finance"].pk]
    (row,) = audit("workflow_resubmitted")
    assert row.changes["status"] == ["changes_requested", "active"]
    assert row.changes["contract_status"] == ["changes_requested", "in_review"]
    assert row.changes["changed_fields"] == [None, []]
    assert row.changes["revision"] == [1, 1]
    assert 5 * 3600 <= row.changes["paused_seconds"][1] <= 5 * 3600 + 60
    (reset,) = audit("approvals_reset")
    assert reset.changes["stages"] == [None, ["Finance"]]
    response = sla.post("/api/admin/sla-breaches/check_breaches/", {}, format="json")
    assert response.json()["breached"] == 0

    approved(clients["treasury"], contract_id)
    approved(clients["finance"], contract_id)
    assert approved(clients["ceo"], contract_id)["status"] == "completed"
    assert contract_status(requester_client, contract_id) == "approved"


def test_resubmit_after_an_edit_applies_the_reset_policy(paused_review, requester_client):
    """Legal's policy fires on the text edited while the contract was with its requester; the
    requesting stage (after it) loses its decision but waits for Legal's new one."""
    people, clients, contract = paused_review(legal_policy=["text"])
    contract_id = contract["id"]
    paused = act(clients["treasury"], contract_id, "request_changes", comments="Cap liability")
    instance = WorkflowInstance.objects.get(pk=paused.json()["id"])
    shift_back(instance.approvals.all(), ["created_at"], hours=5)
    shift_back(WorkflowInstance.objects.filter(pk=instance.pk), ["changes_requested_at"], hours=5)
    response = patch(requester_client, contract_id, text="Liability is capped at fees paid.")
    assert response.status_code == 200, response.json()
    assert (response.json()["status"], response.json()["revision"]) == ("changes_requested", 2)
    assert error_code(act(clients["legal"], contract_id), 409)["code"] == "changes_requested"
    # The edit re-opened Legal two hours ago, three hours into the pause.
    fresh = instance.approvals.filter(status="pending", approver="legal")
    shift_back(fresh, ["created_at", "due_at", "remind_at"], hours=2)
    shift_back(instance.stages.filter(stage_name="Legal"), ["started_at", "due_at"], hours=2)
    edited_due = fresh.get().due_at

    response = post(requester_client, contract_id, "resubmit")
    assert response.status_code == 200, response.json()
    status = response.json()
    assert (status["status"], status["current_stage"]) == ("active", 1)
    # Legal's fresh row waited two hours with the requester: it is due two hours later, and
    # so is its stage.
    moved = fresh.get().due_at - edited_due
    assert timedelta(hours=2) <= moved <= timedelta(hours=2, minutes=1)
    legal_stage = next(item for item in status["stages"] if item["stage_name"] == "Legal")
    assert datetime.fromisoformat(legal_stage["due_at"]) == fresh.get().due_at
    assert stage_statuses(status) == {"Legal": "pending", "Finance": "waiting", "Exec": "waiting"}
    assert [(row["approver"], row["status"]) for row in rows_of(status, "Legal")] == [
        ("legal", "superseded"),
        ("legal", "pending"),
    ]
    assert {row["status"] for row in rows_of(status, "Finance")} == {"superseded"}
    assert sorted(notified("approval_reset")) == sorted([people["legal"].pk, people["finance"].pk])
    (resubmitted,) = audit("workflow_resubmitted")
    assert resubmitted.changes["changed_fields"] == [None, ["text"]]
    assert resubmitted.changes["revision"] == [1, 2]
    for name in ("finance", "treasury"):
        assert error_code(act(clients[name], contract_id), 403)

    status = approved(clients["legal"], contract_id)
    assert stage_statuses(status) == {"Legal": "approved", "Finance": "pending", "Exec": "waiting"}
    assert sorted((row["approver"], row["status"]) for row in rows_of(status, "Finance")) == [
        ("finance", "pending"),
        ("finance", "superseded"),
        ("treasury", "pending"),
        ("treasury", "superseded"),
    ]
    approved(clients["finance"], contract_id)
    approved(clients["treasury"], contract_id)
    assert approved(clients["ceo"], contract_id)["status"] == "completed"


def test_an_edit_while_changes_are_requested_may_reroute_and_a_paused_review_may_be_cancelled(
    admin_client, requester_client, role_holder, api_client_for
):
    legal, finance = role_holder("legal"), role_holder("finance")
    define(
        admin_client,
        [stage("Legal", 1, ["legal"]), stage("Finance", 2, ["finance"])],
        {"value__lt": 500000},
    )
    high = define(
        admin_client,
        [stage("Legal", 1, ["legal"]), stage("Finance", 2, ["finance"]), stage("CEO", 3, ["ceo"])],
        {"value__gte": 500000},
    )
    contract = create_contract(requester_client, value="400000")
    approved(api_client_for(legal), contract["id"])
    paused = act(api_client_for(finance), contract["id"], "request_changes", comments="Raise it")
    assert paused.json()["status"] == "changes_requested"

    body = patch(requester_client, contract["id"], value="600000").json()
    assert (body["status"], body["workflow"]["definition"]["id"]) == ("in_review", high["id"])
    assert WorkflowInstance.objects.get(pk=paused.json()["id"]).status == "cancelled"
    (rerouted,) = audit("workflow_rerouted")
    assert rerouted.changes["status"] == ["changes_requested", "cancelled"]
    assert rerouted.changes["contract_status"] == ["changes_requested", "in_review"]
    status = status_of(requester_client, contract["id"])
    assert (status["status"], status["changes_requested"]) == ("active", None)

    response = act(api_client_for(legal), contract["id"], "request_changes", comments="Again")
    assert response.json()["changes_requested"]["stage_name"] == "Legal"
    response = cancel(requester_client, contract["id"])
    assert response.status_code == 200, response.json()
    # A closed instance is no longer with its requester.
    assert (response.json()["status"], response.json()["changes_requested"]) == ("cancelled", None)
    assert contract_status(requester_client, contract["id"]) == "cancelled"
    assert error_code(post(requester_client, contract["id"], "resubmit"), 409)
    assert not WorkflowStageApproval.objects.filter(status="pending").exists()
