"""Workflow semantics through the API: start, cancel, status, stage types, delegation, inboxes."""

import uuid
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from approvals.models import WorkflowInstance, WorkflowStageApproval
from audit.models import AuditLog
from tests.factories import UserFactory, UserRoleFactory
from tests.fixtures import (
    DEFINITIONS,
    HIGH_VALUE,
    act,
    approved,
    cancel,
    contract_status,
    create_contract,
    error_code,
    row_history,
    row_statuses,
    rows_of,
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


@pytest.fixture
def define(admin_client):
    """`define(stages, trigger_conditions={}, **fields)` creates a definition through the API."""

    def make(stages, trigger_conditions=None, name=None, **fields) -> dict:
        payload = {
            "name": name or f"Flow {uuid.uuid4().hex[:8]}",
            "trigger_conditions": {} if trigger_conditions is None else trigger_conditions,
            "stages": stages,
            **fields,
        }
        response = admin_client.post(DEFINITIONS, payload, format="json")
        assert response.status_code == 201, response.json()
        return response.json()

    return make


@pytest.fixture
def requester(tenant):
    return UserFactory(tenant=tenant)


@pytest.fixture
def requester_client(api_client_for, requester):
    return api_client_for(requester)


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


def audit_actions() -> list[str]:
    return list(AuditLog.objects.order_by("created_at").values_list("action", flat=True))


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
    from tests.factories import UserRoleFactory

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
