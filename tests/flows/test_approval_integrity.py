"""docs/api.md "Approval integrity" through the API on PostgreSQL: the exploits it closes,
revisions, re-routing, request changes / resubmit, amendments, and their audit rows and
notifications.

The reset matrix (which edit re-opens which stage) is in ``test_reset_matrix``.
"""

import hashlib
import json
import uuid
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from approvals.models import SLABreach, WorkflowInstance, WorkflowStageApproval
from audit.models import AuditLog
from contracts.models import BUSINESS_FIELDS, ContractRevision
from notifications.models import Notification
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
    row_statuses,
    rows_of,
    stage_statuses,
    status_of,
)
from tests.fixtures import api_stage as stage
from tests.fixtures import api_start as start

pytestmark = pytest.mark.django_db


def define(admin_client, stages, trigger_conditions=None, **fields) -> dict:
    payload = {
        "name": fields.pop("name", f"Flow {uuid.uuid4().hex[:8]}"),
        "trigger_conditions": {} if trigger_conditions is None else trigger_conditions,
        "stages": stages,
        **fields,
    }
    response = admin_client.post(DEFINITIONS, payload, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def patch(client, contract_id, **fields):
    return client.patch(f"/api/contracts/{contract_id}/", fields, format="json")


def post(client, contract_id, what, **body):
    return client.post(f"/api/contracts/{contract_id}/{what}/", body, format="json")


def audit(action, **filters) -> list[AuditLog]:
    return list(AuditLog.objects.filter(action=action, **filters).order_by("created_at", "id"))


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


def open_instances(contract_id) -> int:
    return WorkflowInstance.objects.filter(
        contract_id=contract_id, status__in=["active", "changes_requested"]
    ).count()


@pytest.fixture
def requester(tenant):
    return UserFactory(tenant=tenant)


@pytest.fixture
def requester_client(api_client_for, requester):
    return api_client_for(requester)


@pytest.fixture
def capable(tenant, api_client_for):
    """`capable("contracts.manage")`: a client for a member holding only that capability."""

    def make(*permissions):
        holder = UserRoleFactory(
            user=UserFactory(tenant=tenant), role="ops", permissions=list(permissions)
        ).user
        return api_client_for(holder)

    return make


# --- exploits ------------------------------------------------------------------------------


def test_a_restart_cannot_route_around_the_matched_chain(
    admin_client, requester_client, role_holder, api_client_for, tenant, capable
):
    legal = api_client_for(role_holder("legal"))
    high = admin_client.post(DEFINITIONS, HIGH_VALUE, format="json").json()
    nda = define(admin_client, [stage("NDA Review", 1, ["legal"])], {"contract_type": "NDA"})
    contract = create_contract(requester_client, value="5000000")
    assert contract["workflow"]["definition"]["id"] == high["id"]
    assert cancel(requester_client, contract["id"]).status_code == 200

    body = error_code(start(requester_client, contract["id"], workflow_definition=nda["id"]), 403)
    assert "workflows.manage" in body["detail"]
    assert contract_status(requester_client, contract["id"]) == "cancelled"
    assert open_instances(contract["id"]) == 0
    response = start(requester_client, contract["id"])
    assert response.status_code == 201, response.json()
    assert response.json()["definition"]["id"] == high["id"]
    assert [item["stage_name"] for item in response.json()["stages"]] == [
        "Legal Review",
        "Finance Approval",
        "Executive Sign-Off",
    ]

    assert act(legal, contract["id"], "reject", comments="No").json()["status"] == "rejected"
    for outsider in (
        legal,
        api_client_for(UserFactory(tenant=tenant)),
        capable("contracts.manage"),
    ):
        assert error_code(start(outsider, contract["id"]), 403)
    assert open_instances(contract["id"]) == 0
    # The creator edits the rejected contract (a draft edit) and restarts: it is re-matched.
    response = patch(requester_client, contract["id"], contract_type="NDA")
    assert (response.json()["status"], response.json()["revision"]) == ("rejected", 2)
    response = start(requester_client, contract["id"])
    assert response.status_code == 201, response.json()
    assert response.json()["definition"]["id"] == nda["id"]
    assert WorkflowInstance.objects.filter(contract_id=contract["id"]).count() == 3

    # `workflows.manage` may name a definition (an operator's deliberate choice).
    manager = capable("workflows.manage")
    assert cancel(manager, contract["id"]).status_code == 200
    response = start(manager, contract["id"], workflow_definition=high["id"])
    assert response.status_code == 201, response.json()
    assert response.json()["definition"]["id"] == high["id"]


def test_only_the_creator_or_contracts_manage_edits(
    admin_client, requester_client, requester, role_holder, api_client_for, tenant, capable
):
    define(admin_client, [stage("Legal", 1, ["legal"])], {"value__gte": 1000})
    draft = create_contract(requester_client, value="10")
    assert draft["status"] == "draft"
    colleague = api_client_for(UserFactory(tenant=tenant))
    body = error_code(patch(colleague, draft["id"], value="1.00"), 403)
    assert "contracts.manage" in body["detail"]
    assert (contract_status(requester_client, draft["id"]), ContractRevision.objects.count()) == (
        "draft",
        1,
    )
    assert not audit("contract_updated")

    manager = capable("contracts.manage")
    response = patch(manager, draft["id"], value="1.00")
    assert response.status_code == 200, response.json()
    assert (response.json()["value"], response.json()["revision"]) == ("1.00", 2)
    (row,) = audit("contract_updated")
    assert row.changes["value"] == ["10.00", "1.00"]

    # An approved contract is locked, for its creator and for `contracts.manage` alike.
    legal = api_client_for(role_holder("legal"))  # held when the stage opens
    contract = create_contract(requester_client, value="5000")
    # Under review too: nobody else lowers the value to send it down a cheaper route.
    assert error_code(patch(colleague, contract["id"], value="1.00"), 403)
    approved(legal, contract["id"])
    for client in (requester_client, manager):
        body = error_code(patch(client, contract["id"], value="1.00"), 409)
        assert body["code"] == "contract_locked"
    detail = requester_client.get(f"/api/contracts/{contract['id']}/").json()
    assert (detail["status"], detail["value"], detail["revision"]) == ("approved", "5000.00", 1)
    assert error_code(patch(colleague, contract["id"], value="1.00"), 403)


def test_a_roles_manager_cannot_approve_twice(
    admin_client, requester_client, tenant, api_client_for
):
    high = admin_client.post(DEFINITIONS, HIGH_VALUE, format="json").json()
    assert high["distinct_approvers"] is True
    rogue = UserRoleFactory(
        user=UserFactory(tenant=tenant), role="people", permissions=["roles.manage"]
    ).user
    rogue_client = api_client_for(rogue)
    for role in ("legal", "finance", "ceo"):
        response = rogue_client.post(
            "/api/admin/users/roles/", {"user": str(rogue.pk), "role": role}, format="json"
        )
        assert response.status_code == 201, response.json()

    contract = create_contract(requester_client, value="5000000")
    status = approved(rogue_client, contract["id"])
    assert status["current_stage"] == 2
    body = error_code(act(rogue_client, contract["id"]), 403)
    assert body["code"] == "already_decided"
    assert "Legal Review" in body["detail"]
    for action in ("reject", "request_changes"):
        assert error_code(act(rogue_client, contract["id"], action, comments="x"), 403)
    status = status_of(requester_client, contract["id"])
    assert row_statuses(status, "Finance Approval") == {"finance": "pending", "cfo": "pending"}

    # A definition for a team too small to staff every stage says so, and the audit shows it.
    response = admin_client.patch(
        f"{DEFINITIONS}{high['id']}/", {"distinct_approvers": False}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert (response.json()["distinct_approvers"], response.json()["version"]) == (False, 2)
    (updated,) = audit("workflow_definition_updated", resource_id=high["id"])
    assert updated.changes["distinct_approvers"] == [True, False]
    # The running instance keeps the version it started with.
    assert error_code(act(rogue_client, contract["id"]), 403)["code"] == "already_decided"

    small_team = create_contract(requester_client, value="5000000")
    for _ in range(3):
        status = approved(rogue_client, small_team["id"])
    assert (status["status"], status["distinct_approvers"]) == ("completed", False)
    deciders = {row["decided_by"] for item in status["stages"] for row in item["approvals"]}
    assert deciders == {str(rogue.pk), None}  # the cfo row was skipped


def test_no_delegation_to_someone_who_already_decided(
    admin_client, requester_client, role_holder, api_client_for
):
    legal, finance = role_holder("legal"), role_holder("finance")
    define(admin_client, [stage("Legal", 1, ["legal"]), stage("Finance", 2, ["finance"])])
    contract = create_contract(requester_client)
    approved(api_client_for(legal), contract["id"])
    response = act(api_client_for(finance), contract["id"], "delegate", delegate_to=str(legal.pk))
    body = error_code(response, 400)
    assert "delegate_to" in body["fields"]
    status = status_of(requester_client, contract["id"])
    assert row_statuses(status, "Finance") == {"finance": "pending"}
    assert not audit("approval_delegated")


def test_cancel_needs_the_creator_or_workflows_manage(
    admin_client, requester_client, role_holder, api_client_for, tenant, capable
):
    define(admin_client, [stage("Legal", 1, ["legal"])])
    contract = create_contract(requester_client)
    outsiders = (
        api_client_for(UserFactory(tenant=tenant)),
        api_client_for(role_holder("legal")),
        capable("contracts.manage"),
    )
    for outsider in outsiders:
        assert error_code(cancel(outsider, contract["id"]), 403)
    assert status_of(requester_client, contract["id"])["status"] == "active"
    response = cancel(capable("workflows.manage"), contract["id"])
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "cancelled"
    assert contract_status(requester_client, contract["id"]) == "cancelled"


# --- revisions -----------------------------------------------------------------------------


def canonical_hash(content: dict) -> str:
    """SHA-256 of the canonical JSON, as docs/api.md and contracts.revisions define it."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def test_revisions_hashes_and_the_revision_each_decision_was_made_on(
    admin_client, requester_client, requester, role_holder, api_client_for, other_tenant
):
    legal, finance = role_holder("legal"), role_holder("finance")
    define(
        admin_client,
        [
            stage("Legal", 1, ["legal"], reset_on_change=["value"]),
            stage("Finance", 2, ["finance"]),
        ],
    )
    contract = create_contract(
        requester_client,
        title="Überseevertrag — Lieferung",
        value=600000,
        start_date="2026-01-01",
        end_date="2026-12-31",
        text="Liability is capped.",
        metadata={"po": "PO-1", "nested": {"b": 1, "a": [True, None]}},
    )
    assert contract["revision"] == 1
    assert contract["content_hash"] == canonical_hash({f: contract[f] for f in BUSINESS_FIELDS})
    status = status_of(requester_client, contract["id"])
    assert {row["revision"] for row in rows_of(status, "Legal")} == {None}

    status = approved(api_client_for(legal), contract["id"])
    assert [row["revision"] for row in rows_of(status, "Legal")] == [1]
    assert [row["revision"] for row in rows_of(status, "Finance")] == [None]

    url = f"/api/contracts/{contract['id']}/"
    assert patch(requester_client, contract["id"], title="Renamed").json()["revision"] == 2
    # The same content sent another way is no change at all.
    for same in ({"value": "600000.00"}, {"value": 600000}, {"value": "600000"}):
        response = patch(requester_client, contract["id"], **same, metadata=contract["metadata"])
        assert response.status_code == 200, response.json()
        assert response.json()["revision"] == 2
    response = patch(requester_client, contract["id"], text="Liability is unlimited.", region="EU")
    assert response.json()["revision"] == 3
    status = approved(api_client_for(finance), contract["id"])
    assert status["status"] == "completed"  # Legal's policy ignores text: its decision stands
    assert [row["revision"] for row in rows_of(status, "Legal")] == [1]
    assert [row["revision"] for row in rows_of(status, "Finance")] == [3]

    response = requester_client.get(f"{url}revisions/")
    assert response.status_code == 200, response.json()
    page = response.json()
    assert set(page) == {"count", "next", "previous", "results"}
    assert page["count"] == 3
    assert [item["revision"] for item in page["results"]] == [3, 2, 1]
    assert [item["changed_fields"] for item in page["results"]] == [
        ["region", "text"],
        ["title"],
        [],
    ]
    for item in page["results"]:
        assert set(item) == {
            "revision",
            "content_hash",
            "changed_fields",
            "created_by",
            "created_at",
        }
        assert item["created_by"]["id"] == str(requester.pk)
        assert datetime.fromisoformat(item["created_at"]).tzinfo is not None
    assert len({item["content_hash"] for item in page["results"]}) == 3
    detail = requester_client.get(url).json()
    assert (detail["revision"], detail["content_hash"]) == (3, page["results"][0]["content_hash"])
    assert detail["content_hash"] == canonical_hash({f: detail[f] for f in BUSINESS_FIELDS})
    assert page["results"][-1]["content_hash"] == contract["content_hash"]
    for revision in ContractRevision.objects.filter(contract_id=contract["id"]):
        assert canonical_hash(revision.content) == revision.content_hash

    paged = requester_client.get(f"{url}revisions/", {"page_size": 1}).json()
    assert (paged["count"], len(paged["results"]), paged["next"] is not None) == (3, 1, True)
    stranger = api_client_for(UserFactory(tenant=other_tenant))
    assert error_code(stranger.get(f"{url}revisions/"), 404)


# --- re-routing ----------------------------------------------------------------------------


def test_an_edit_under_review_reroutes_between_value_bands(
    admin_client, requester_client, role_holder, api_client_for
):
    legal = role_holder("legal")
    standard = define(
        admin_client,
        [stage("Legal", 1, ["legal"]), stage("Finance", 2, ["finance"])],
        {"value__lt": 500000, "contract_type": "MSA"},
        name="Standard",
    )
    high = define(
        admin_client,
        [stage("Legal", 1, ["legal"]), stage("Finance", 2, ["finance"]), stage("CEO", 3, ["ceo"])],
        {"value__gte": 500000, "contract_type": "MSA"},
        name="High value",
    )
    contract = create_contract(requester_client, value="400000")
    first = contract["workflow"]
    assert first["definition"]["id"] == standard["id"]
    approved(api_client_for(legal), contract["id"])

    response = patch(requester_client, contract["id"], value="600000")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["revision"]) == ("in_review", 2)
    second = body["workflow"]
    assert second["id"] != first["id"]
    assert (second["definition"]["id"], second["status"], second["current_stage"]) == (
        high["id"],
        "active",
        1,
    )
    assert WorkflowInstance.objects.get(pk=first["id"]).status == "cancelled"
    (rerouted,) = audit("workflow_rerouted")
    assert rerouted.resource_id == first["id"]
    assert rerouted.changes["reason"] == [None, "rerouted"]
    assert rerouted.changes["status"] == ["active", "cancelled"]
    assert rerouted.changes["to_definition"] == [None, high["id"]]
    # The contract stays in review (under the new workflow); it never was cancelled.
    assert rerouted.changes["contract_status"] == ["in_review", "in_review"]
    status = status_of(requester_client, contract["id"])
    assert status["id"] == second["id"]
    assert stage_statuses(status) == {"Legal": "pending", "Finance": "waiting", "CEO": "waiting"}
    # Legal's decision was on the old route: they hear it no longer counts.
    (reset,) = Notification.objects.filter(notification_type="approval_reset")
    assert (reset.recipient_id, reset.payload["reason"]) == (legal.pk, "rerouted")

    response = patch(requester_client, contract["id"], value="400000")
    third = response.json()["workflow"]
    assert (third["definition"]["id"], third["status"]) == (standard["id"], "active")
    assert WorkflowInstance.objects.get(pk=second["id"]).status == "cancelled"
    assert len(audit("workflow_rerouted")) == 2

    # Nothing matches an NDA: the contract is a draft again, with no open workflow.
    response = patch(requester_client, contract["id"], contract_type="NDA")
    body = response.json()
    assert (body["status"], body["revision"]) == ("draft", 4)
    assert (body["workflow"]["id"], body["workflow"]["status"]) == (third["id"], "cancelled")
    assert open_instances(contract["id"]) == 0
    last = audit("workflow_rerouted")[-1].changes
    assert (last["to_definition"], last["contract_status"]) == (
        [None, None],
        ["in_review", "draft"],
    )
    assert WorkflowInstance.objects.filter(contract_id=contract["id"]).count() == 3
    assert error_code(start(requester_client, contract["id"]), 400)


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


# --- amendments ----------------------------------------------------------------------------


def test_amend_an_approved_contract(
    admin_client, requester_client, role_holder, api_client_for, tenant, capable
):
    legal = api_client_for(role_holder("legal"))
    define(admin_client, [stage("Legal", 1, ["legal"])], {"contract_type": "MSA"})
    contract = create_contract(requester_client)
    draft = create_contract(requester_client, contract_type="NDA")
    for target in (contract, draft):  # in review, draft
        body = error_code(post(requester_client, target["id"], "amend", value="1"), 409)
        assert body["code"] == "contract_not_approved"
    first = approved(legal, contract["id"])
    assert first["status"] == "completed"
    amend_url = f"/api/contracts/{contract['id']}/amend/"
    colleague = api_client_for(UserFactory(tenant=tenant))
    assert error_code(colleague.post(amend_url, {"value": "1"}, format="json"), 403)
    body = error_code(requester_client.post(amend_url, {"value": 600000}, format="json"), 400)
    assert body["fields"]
    assert contract_status(requester_client, contract["id"]) == "approved"

    response = requester_client.post(amend_url, {"value": "650000"}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["revision"], body["value"]) == ("in_review", 2, "650000.00")
    assert body["workflow"]["id"] != first["id"]
    assert (body["workflow"]["status"], body["workflow"]["current_stage"]) == ("active", 1)
    assert WorkflowInstance.objects.get(pk=first["id"]).status == "completed"
    (amended,) = audit("contract_amended")
    assert amended.resource_id == contract["id"]
    assert amended.changes["value"] == ["600000.00", "650000.00"]
    assert amended.changes["revision"] == [1, 2]
    assert amended.changes["content_hash"] == [contract["content_hash"], body["content_hash"]]

    assert approved(legal, contract["id"])["status"] == "completed"
    # `contracts.manage` amends too; nothing matches an NDA: a draft.
    response = capable("contracts.manage").post(amend_url, {"contract_type": "NDA"}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["revision"]) == ("draft", 3)
    assert open_instances(contract["id"]) == 0
    assert list(
        WorkflowInstance.objects.filter(contract_id=contract["id"]).values_list("status", flat=True)
    ) == ["completed", "completed"]
    assert len(audit("contract_amended")) == 2
    revisions = requester_client.get(f"/api/contracts/{contract['id']}/revisions/").json()
    assert [item["changed_fields"] for item in revisions["results"]] == [
        ["contract_type"],
        ["value"],
        [],
    ]
