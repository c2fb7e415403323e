"""The reset matrix of docs/api.md "Approval integrity": an edit during review re-opens exactly the
stages whose ``reset_on_change`` policy fires on the changed fields and that hold decisions.

One three-stage definition, Legal -> Finance (``all`` of finance and treasury) -> Exec, always
brought to the same point: Legal approved, Finance half decided (finance approved, treasury
pending), Exec waiting. The policy under test is put on the stage in the state under test; the
other two stages say ``"never"``, so whatever moves is that stage's doing. Then the requester
PATCHes one class of field and the table below says what the workflow looks like afterwards.
"""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from approvals.models import WorkflowStageApproval
from audit.models import AuditLog
from notifications.models import Notification
from tests.factories import UserFactory
from tests.fixtures import DEFINITIONS, approved, create_contract, stage_statuses, status_of
from tests.fixtures import api_stage as stage

pytestmark = pytest.mark.django_db

SLA_HOURS = {"Legal": 48, "Finance": 24, "Exec": 72}
# The stage that carries the policy under test, by the state that stage is in at the edit.
STAGE_IN_STATE = {"waiting": "Exec", "pending": "Finance", "settled": "Legal"}
POLICIES = {"any": "any", "value": ["value"], "text": ["text"], "never": "never"}
EDITS = {
    "text": {"text": "Clause 7 now caps liability."},
    "value": {"value": "650000.00"},
    "metadata": {"metadata": {"po": "PO-2"}},
    # The same content written differently: no new revision, nothing to reset.
    "none": {"value": 600000, "metadata": {"po": "PO-1"}, "title": "Matrix MSA"},
}
# Which field classes each policy fires on (a stage re-opens only if it also holds a decision).
FIRES = {
    "any": {"text", "value", "metadata"},
    "value": {"value"},
    "text": {"text"},
    "never": set(),
}
UNCHANGED = {
    "current_stage": 2,
    "stages": {"Legal": "approved", "Finance": "pending", "Exec": "waiting"},
    "rows": {
        "Legal": {"legal": "approved"},
        "Finance": {"finance": "approved", "treasury": "pending"},
    },
    "superseded": set(),
    "fresh": set(),
    "notified": set(),
}
# What a firing policy does, by the state of its stage. A waiting stage holds no decision, so
# it never re-opens. Rows are `{approver: status}` of the live (not superseded) rows.
FIRED = {
    "waiting": UNCHANGED,
    "pending": {
        "current_stage": 2,
        "stages": {"Legal": "approved", "Finance": "pending", "Exec": "waiting"},
        "rows": {
            "Legal": {"legal": "approved"},
            "Finance": {"finance": "pending", "treasury": "pending"},
        },
        "superseded": {("Finance", "finance")},
        "fresh": {("Finance", "finance")},
        "notified": {"finance"},
    },
    "settled": {
        # Finance ("never") goes back to waiting: its pending row is superseded, its decision kept.
        "current_stage": 1,
        "stages": {"Legal": "pending", "Finance": "waiting", "Exec": "waiting"},
        "rows": {"Legal": {"legal": "pending"}, "Finance": {"finance": "approved"}},
        "superseded": {("Legal", "legal"), ("Finance", "treasury")},
        "fresh": {("Legal", "legal")},
        "notified": {"legal"},
    },
}


def define(admin_client, policies: dict) -> dict:
    stages = [
        stage("Legal", 1, ["legal"], sla_hours=48, reset_on_change=policies["Legal"]),
        stage(
            "Finance",
            2,
            ["finance", "treasury"],
            sla_hours=24,
            reset_on_change=policies["Finance"],
        ),
        stage("Exec", 3, ["ceo"], sla_hours=72, reset_on_change=policies["Exec"]),
    ]
    body = {"name": "Matrix", "trigger_conditions": {}, "stages": stages}
    response = admin_client.post(DEFINITIONS, body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def live_rows(status: dict) -> dict:
    return {
        item["stage_name"]: {
            row["approver"]: row["status"]
            for row in item["approvals"]
            if row["status"] != "superseded"
        }
        for item in status["stages"]
        if item["approvals"]
    }


@pytest.mark.parametrize("state", list(STAGE_IN_STATE))
@pytest.mark.parametrize("edit", list(EDITS))
@pytest.mark.parametrize("policy", list(POLICIES))
def test_reset_matrix(policy, edit, state, tenant, admin_client, role_holder, api_client_for):
    people = {name: role_holder(name) for name in ("legal", "finance", "treasury", "ceo")}
    requester_client = api_client_for(UserFactory(tenant=tenant))
    policies = {name: "never" for name in SLA_HOURS} | {STAGE_IN_STATE[state]: POLICIES[policy]}
    define(admin_client, policies)
    contract = create_contract(requester_client, title="Matrix MSA", metadata={"po": "PO-1"})
    approved(api_client_for(people["legal"]), contract["id"])
    before = approved(api_client_for(people["finance"]), contract["id"])
    assert live_rows(before) == UNCHANGED["rows"]
    # Every row due an hour ago: a fresh row is recognisable by its new due date.
    an_hour_ago = timezone.now() - timedelta(hours=1)
    WorkflowStageApproval.objects.update(due_at=an_hour_ago)
    ids_before = {
        (item["stage_name"], row["approver"]): row["id"]
        for item in before["stages"]
        for row in item["approvals"]
    }

    edited_at = timezone.now()
    response = requester_client.patch(
        f"/api/contracts/{contract['id']}/", EDITS[edit], format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["revision"] == (1 if edit == "none" else 2)
    assert response.json()["status"] == "in_review"

    fired = edit in FIRES[policy]
    expected = FIRED[state] if fired else UNCHANGED
    status = status_of(requester_client, contract["id"])
    assert status["status"] == "active"
    assert status["id"] == before["id"]
    assert status["current_stage"] == expected["current_stage"]
    assert stage_statuses(status) == expected["stages"]
    assert live_rows(status) == expected["rows"]

    rows = {
        (item["stage_name"], row["approver"], row["status"]): row
        for item in status["stages"]
        for row in item["approvals"]
    }
    superseded = {
        (name, approver) for name, approver, row_status in rows if row_status == "superseded"
    }
    assert superseded == expected["superseded"]
    for name, approver in superseded:  # the very rows that were live before, unchanged otherwise
        assert rows[name, approver, "superseded"]["id"] == ids_before[name, approver]
    fresh = {key[:2] for key, row in rows.items() if row["id"] not in ids_before.values()}
    assert fresh == expected["fresh"]
    for name, approver in fresh:
        row = rows[name, approver, "pending"]
        due = datetime.fromisoformat(row["due_at"])
        hours = timedelta(hours=SLA_HOURS[name])
        assert edited_at + hours <= due <= timezone.now() + hours
        assert (row["decided_by"], row["revision"]) == (None, None)
    kept = [row for key, row in rows.items() if key[:2] not in fresh and key[2] == "pending"]
    assert all(datetime.fromisoformat(row["due_at"]) == an_hour_ago for row in kept)

    notified = set(
        Notification.objects.filter(notification_type="approval_reset").values_list(
            "recipient_id", flat=True
        )
    )
    assert notified == {people[name].pk for name in expected["notified"]}
    resets = list(AuditLog.objects.filter(action="approvals_reset"))
    if not expected["superseded"]:
        assert resets == []
        return
    (reset,) = resets
    assert reset.resource_id == status["id"]
    assert reset.changes["current_stage"] == [2, expected["current_stage"]]
    assert reset.changes["changed_fields"] == [None, [edit]]
    assert reset.changes["stages"] == [None, [STAGE_IN_STATE[state]]]
    assert reset.changes["revision"] == [None, 2]
    assert set(reset.changes["superseded"][1]) == {ids_before[key] for key in superseded}


def test_after_a_reset_the_review_runs_on_with_the_kept_decisions(
    tenant, admin_client, role_holder, api_client_for
):
    """Legal re-opened by a value change; Finance's kept decision still counts when it
    re-opens, and every decision shows the revision it was made on."""
    people = {name: role_holder(name) for name in ("legal", "finance", "treasury", "ceo")}
    clients = {name: api_client_for(user) for name, user in people.items()}
    requester_client = api_client_for(UserFactory(tenant=tenant))
    define(admin_client, {"Legal": ["value"], "Finance": "never", "Exec": "never"})
    contract = create_contract(requester_client)
    approved(clients["legal"], contract["id"])
    approved(clients["finance"], contract["id"])
    response = requester_client.patch(
        f"/api/contracts/{contract['id']}/", {"value": "700000"}, format="json"
    )
    assert response.status_code == 200, response.json()
    # The treasury row was superseded with Finance's return to waiting: nothing to decide now.
    assert (
        clients["treasury"]
        .post(f"/api/contracts/{contract['id']}/approve/", {"action": "approve"}, format="json")
        .status_code
        == 403
    )

    status = approved(clients["legal"], contract["id"])
    assert status["current_stage"] == 2
    assert live_rows(status)["Finance"] == {"finance": "approved", "treasury": "pending"}
    status = approved(clients["treasury"], contract["id"])
    assert stage_statuses(status) == {"Legal": "approved", "Finance": "approved", "Exec": "pending"}
    status = approved(clients["ceo"], contract["id"])
    assert status["status"] == "completed"
    revisions = {
        (item["stage_name"], row["approver"], row["status"]): row["revision"]
        for item in status["stages"]
        for row in item["approvals"]
    }
    assert revisions == {
        ("Legal", "legal", "superseded"): 1,
        ("Legal", "legal", "approved"): 2,
        ("Finance", "finance", "approved"): 1,
        ("Finance", "treasury", "superseded"): None,
        ("Finance", "treasury", "approved"): 2,
        ("Exec", "ceo", "approved"): 2,
    }
    assert requester_client.get(f"/api/contracts/{contract['id']}/").json()["status"] == "approved"


def test_a_reset_never_opens_a_stage_ahead_of_the_current_one(
    tenant, admin_client, role_holder, api_client_for
):
    """A later stage that kept a decision through an earlier reset loses it when its own policy
    fires later on; it stays waiting behind the current stage instead of opening beside it."""
    people = {name: role_holder(name) for name in ("legal", "finance", "treasury", "ceo")}
    clients = {name: api_client_for(user) for name, user in people.items()}
    requester_client = api_client_for(UserFactory(tenant=tenant))
    define(admin_client, {"Legal": ["value"], "Finance": ["text"], "Exec": "never"})
    contract = create_contract(requester_client)
    approved(clients["legal"], contract["id"])
    approved(clients["finance"], contract["id"])
    url = f"/api/contracts/{contract['id']}/"
    assert requester_client.patch(url, {"value": "700000"}, format="json").status_code == 200
    status = status_of(requester_client, contract["id"])
    assert (status["current_stage"], live_rows(status)["Finance"]) == (1, {"finance": "approved"})

    assert requester_client.patch(url, {"text": "New terms."}, format="json").status_code == 200
    status = status_of(requester_client, contract["id"])
    assert status["current_stage"] == 1
    assert stage_statuses(status) == {"Legal": "pending", "Finance": "waiting", "Exec": "waiting"}
    assert live_rows(status) == {"Legal": {"legal": "pending"}, "Finance": {}}
    notified = Notification.objects.filter(notification_type="approval_reset")
    assert sorted(notified.values_list("recipient_id", flat=True)) == sorted(
        [people["legal"].pk, people["finance"].pk]
    )
    for name in ("finance", "treasury"):
        response = clients[name].post(f"{url}approve/", {"action": "approve"}, format="json")
        assert response.status_code == 403, response.json()

    status = approved(clients["legal"], contract["id"])
    assert (status["current_stage"], live_rows(status)["Finance"]) == (
        2,
        {"finance": "pending", "treasury": "pending"},
    )
