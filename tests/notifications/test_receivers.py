"""The signal listeners: who is notified of what, isolation from the decision, bulk fan-out."""

import logging
from datetime import datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals import signals
from approvals.models import WorkflowStageApproval
from approvals.orchestrator import approval_act
from core import rls
from notifications.models import Delivery, Notification
from notifications.services import email_preferences_set
from tenancy.models import User, UserRole
from tests.factories import TenantFactory, UserFactory, UserRoleFactory, WebhookEndpointFactory
from tests.fixtures import make_definition, start_contract

pytestmark = pytest.mark.django_db

HIGH_VALUE = {
    "name": "High Value Contract Approval",
    "trigger_conditions": {"value__gte": 500000, "contract_type__in": ["MSA", "SOW"]},
    "stages": [
        {
            "stage_name": "Legal Review",
            "sequence": 1,
            "approvers": ["legal"],
            "approval_type": "all",
            "sla_hours": 48,
        },
        {
            "stage_name": "Finance Approval",
            "sequence": 2,
            "approvers": ["finance", "cfo"],
            "approval_type": "any",
            "sla_hours": 24,
        },
        {
            "stage_name": "Executive Sign-Off",
            "sequence": 3,
            "approvers": ["ceo"],
            "approval_type": "all",
            "sla_hours": 72,
        },
    ],
    "priority": 100,
}


def received(since=None) -> list[tuple]:
    """(type, recipient, priority, stage) of the notifications written, oldest first."""
    rows = Notification.objects.order_by("created_at", "id")
    if since is not None:
        rows = rows.exclude(pk__in=since)
    return [
        (row.notification_type, row.recipient_id, row.priority, row.payload.get("stage_name"))
        for row in rows
    ]


def ids() -> set:
    return set(Notification.objects.values_list("pk", flat=True))


def act(client, contract_id, action="approve", **extra):
    response = client.post(
        f"/api/contracts/{contract_id}/approve/", {"action": action, **extra}, format="json"
    )
    assert response.status_code == 200, response.json()
    return response.json()


@pytest.fixture
def people(tenant, role_holder):
    requester = UserFactory(tenant=tenant)
    UserRoleFactory(user=requester, role="legal")  # a holder, but the creator: never notified
    expired = role_holder("legal", expires_at=timezone.now() - timedelta(days=1))
    inactive = role_holder("legal")
    User.objects.filter(pk=inactive.pk).update(is_active=False)
    return {
        "requester": requester,
        "legal": role_holder("legal"),
        "legal_2": role_holder("legal"),
        "finance": role_holder("finance"),
        "cfo": role_holder("cfo"),
        "ceo": role_holder("ceo"),
        "stand_in": UserFactory(tenant=tenant),
        "expired": expired,
        "inactive": inactive,
    }


@pytest.fixture
def contract(admin_client, api_client_for, people):
    response = admin_client.post("/api/workflows/config/", HIGH_VALUE, format="json")
    assert response.status_code == 201, response.json()
    response = api_client_for(people["requester"]).post(
        "/api/contracts/",
        {"title": "Globex MSA", "contract_type": "MSA", "value": "750000"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


def test_full_approval_flow_notifies_every_party(api_client_for, people, contract):
    p = {name: user.pk for name, user in people.items()}
    legal, finance, ceo = "Legal Review", "Finance Approval", "Executive Sign-Off"
    assert sorted(received(), key=str) == sorted(
        [
            ("approval_assigned", p["legal"], "medium", legal),
            ("approval_assigned", p["legal_2"], "medium", legal),
        ],
        key=str,
    )

    seen = ids()
    act(api_client_for(people["legal"]), contract["id"], comments="Clause 7 is fine")
    assert sorted(received(seen), key=str) == sorted(
        [
            ("approval_decided", p["requester"], "medium", legal),
            ("approval_assigned", p["finance"], "medium", finance),
            ("approval_assigned", p["cfo"], "medium", finance),
        ],
        key=str,
    )
    decided = Notification.objects.get(notification_type="approval_decided")
    assert decided.payload["decision"] == "approved"
    assert decided.payload["comments"] == "Clause 7 is fine"
    assert decided.payload["decided_by"] == str(people["legal"].pk)
    assert "Clause 7 is fine" in decided.message
    assert legal in decided.message

    seen = ids()
    act(
        api_client_for(people["cfo"]),
        contract["id"],
        "delegate",
        delegate_to=str(people["stand_in"].pk),
        comments="On leave",
    )
    assert sorted(received(seen), key=str) == sorted(
        [
            ("approval_delegated", p["stand_in"], "medium", finance),
            ("approval_assigned", p["stand_in"], "medium", finance),
        ],
        key=str,
    )
    delegated = Notification.objects.get(notification_type="approval_delegated")
    assert delegated.payload["delegated_by"] == str(people["cfo"].pk)
    assert delegated.payload["comments"] == "On leave"

    seen = ids()
    act(api_client_for(people["stand_in"]), contract["id"])
    # One transaction's notifications share their created_at: compare them as a set.
    assert sorted(received(seen), key=str) == sorted(
        [
            ("approval_decided", p["requester"], "medium", finance),
            ("approval_assigned", p["ceo"], "medium", ceo),
        ],
        key=str,
    )

    seen = ids()
    act(api_client_for(people["ceo"]), contract["id"])
    assert sorted(received(seen), key=str) == sorted(
        [
            ("approval_decided", p["requester"], "medium", ceo),
            ("workflow_completed", p["requester"], "high", None),
        ],
        key=str,
    )
    completed = Notification.objects.get(notification_type="workflow_completed")
    assert completed.payload["contract_id"] == contract["id"]
    assert completed.payload["status"] == "completed"

    nobody = {p["expired"], p["inactive"]}
    assert not Notification.objects.filter(recipient_id__in=nobody).exists()
    assert not Notification.objects.filter(
        recipient=people["requester"], notification_type="approval_assigned"
    ).exists()


def test_assignment_payload_carries_what_the_approver_needs(people, contract):
    note = Notification.objects.filter(recipient=people["legal"]).get()
    approval = WorkflowStageApproval.objects.get(contract_id=contract["id"])
    assert note.payload == {
        "contract_id": contract["id"],
        "contract_title": "Globex MSA",
        "instance_id": str(approval.instance_id),
        "approval_id": str(approval.pk),
        "stage_name": "Legal Review",
        "due_at": approval.due_at.isoformat(),
    }
    assert note.title == "Approval needed: Globex MSA (Legal Review)"
    assert f"due {approval.due_at:%Y-%m-%d %H:%M} UTC" in note.message


def test_rejection_and_cancellation_have_their_own_high_priority_messages(
    api_client_for, tenant, role_holder
):
    make_definition(tenant)
    requester = UserFactory(tenant=tenant)
    legal = role_holder("legal")
    rejected = start_contract(tenant, requester, title="Rejected deal")
    cancelled = start_contract(tenant, requester, title="Cancelled deal")

    act(api_client_for(legal), rejected.pk, "reject", comments="Unlimited liability")
    response = api_client_for(requester).post(
        f"/api/contracts/{cancelled.pk}/workflow/cancel/", {"reason": "deal off"}, format="json"
    )
    assert response.status_code == 200, response.json()

    outcomes = {
        row.notification_type: row
        for row in Notification.objects.filter(
            recipient=requester, notification_type__startswith="workflow_"
        )
    }
    assert set(outcomes) == {"workflow_rejected", "workflow_cancelled"}
    assert {row.priority for row in outcomes.values()} == {"high"}
    rejection = outcomes["workflow_rejected"]
    assert rejection.title == "Contract rejected: Rejected deal"
    assert '"Legal Review"' in rejection.message
    assert "Unlimited liability" in rejection.message
    assert rejection.payload["stage_name"] == "Legal Review"
    assert outcomes["workflow_cancelled"].title == "Workflow cancelled: Cancelled deal"
    assert rejection.message != outcomes["workflow_cancelled"].message


def test_named_approver_is_notified_even_without_a_role(tenant):
    named = UserFactory(tenant=tenant)
    make_definition(
        tenant, stages=[{"stage_name": "Named", "sequence": 1, "approvers": [f"user:{named.pk}"]}]
    )
    contract = start_contract(tenant, UserFactory(tenant=tenant))
    note = Notification.objects.get(recipient=named)
    assert note.notification_type == "approval_assigned"
    assert note.payload["contract_id"] == str(contract.pk)


def test_a_rolled_back_decision_notifies_nobody(tenant, role_holder):
    make_definition(tenant)
    legal = role_holder("legal")
    role_holder("finance")
    contract = start_contract(tenant, UserFactory(tenant=tenant))
    before = (set(Notification.objects.values_list("pk", flat=True)), Delivery.objects.count())

    def decide_then_fail():
        with transaction.atomic():
            approval_act(tenant=tenant, contract_id=contract.pk, actor=legal, action="approve")
            # Inside the transaction the listeners did write (so the check below is not vacuous).
            assert Notification.objects.filter(notification_type="approval_decided").exists()
            raise RuntimeError("the request failed after the decision")

    with pytest.raises(RuntimeError, match="failed after the decision"):
        decide_then_fail()

    assert set(Notification.objects.values_list("pk", flat=True)) == before[0]
    assert Delivery.objects.count() == before[1]
    assert WorkflowStageApproval.objects.get(contract=contract).status == "pending"


def test_a_failing_listener_is_logged_and_never_breaks_the_decision(
    api_client_for, tenant, role_holder, caplog, monkeypatch
):
    make_definition(tenant)
    legal = role_holder("legal")
    finance = role_holder("finance")
    requester = UserFactory(tenant=tenant)
    contract = start_contract(tenant, requester)

    def exploding_listener(sends):
        Notification.objects.create(  # written, then rolled back with the listener's savepoint
            tenant_id=tenant.pk,
            recipient=requester,
            notification_type="approval_decided",
            title="from the broken listener",
            message="",
        )
        raise RuntimeError("listener bug")

    # Registered as the app's own listener is (signals.connect_batch), removed after the test.
    monkeypatch.setattr(signals, "_batch_receivers", dict(signals._batch_receivers))
    signals.connect_batch(exploding_listener, dispatch_uid="tests.exploding_listener")
    with caplog.at_level(logging.ERROR, logger="approvals.signals"):
        response = api_client_for(legal).post(
            f"/api/contracts/{contract.pk}/approve/", {"action": "approve"}, format="json"
        )

    assert response.status_code == 200, response.json()
    approval = WorkflowStageApproval.objects.get(contract=contract, stage__sequence=1)
    assert approval.status == "approved"
    assert approval.decided_by == legal
    # The other listeners still wrote their notifications; the broken one's row is gone.
    assert (
        Notification.objects.filter(recipient=requester, notification_type="approval_decided")
        .get()
        .title.startswith("Legal Review approved")
    )
    assert Notification.objects.filter(
        recipient=finance, notification_type="approval_assigned"
    ).exists()
    assert not Notification.objects.filter(title="from the broken listener").exists()
    [record] = [r for r in caplog.records if r.getMessage() == "signal receiver failed"]
    assert "approval_decided" in record.signals
    assert record.receiver.endswith("exploding_listener")
    assert record.instance_id == str(approval.instance_id)
    assert isinstance(record.exc_info[1], RuntimeError)


def _stage_with_holders(holders: int) -> tuple[int, int, int]:
    """Start a workflow whose first stage's role has `holders` holders; return
    (queries, notifications, deliveries)."""
    tenant = TenantFactory()
    with rls.tenant_scope(tenant):
        make_definition(
            tenant, stages=[{"stage_name": "Wide", "sequence": 1, "approvers": ["ops"]}]
        )
        WebhookEndpointFactory(tenant=tenant, events=["approval_assigned"])
        users = User.objects.bulk_create(
            User(
                tenant=tenant,
                email=f"ops-{holders}-{number}@{tenant.slug}.example.com",
                full_name=f"Ops {number}",
                password="!",
            )
            for number in range(holders)
        )
        UserRole.objects.bulk_create(
            UserRole(tenant=tenant, user=user, role="ops") for user in users
        )
        creator = UserFactory(tenant=tenant)
        with CaptureQueriesContext(connection) as queries:
            contract = start_contract(tenant, creator)
        notifications = Notification.objects.filter(tenant=tenant).count()
        deliveries = Delivery.objects.filter(tenant=tenant)
        assert deliveries.filter(channel="webhook").count() == 1  # one event, not one per holder
        assert contract.status == "in_review"
        return len(queries), notifications, deliveries.filter(channel="email").count()


def test_fan_out_to_500_role_holders_costs_the_same_queries_as_to_5():
    small_queries, small_notes, small_emails = _stage_with_holders(5)
    large_queries, large_notes, large_emails = _stage_with_holders(500)
    assert (small_notes, small_emails) == (5, 5)
    assert (large_notes, large_emails) == (500, 500)
    assert large_queries == small_queries


def test_opted_out_users_get_the_in_app_row_but_no_email(tenant, role_holder):
    make_definition(tenant)
    keen, quiet = role_holder("legal"), role_holder("legal")
    email_preferences_set(user=quiet, email={"approval_assigned": False})
    start_contract(tenant, UserFactory(tenant=tenant))

    assert Notification.objects.filter(recipient__in=[keen, quiet]).count() == 2
    emails = Delivery.objects.filter(channel="email")
    assert list(emails.values_list("notification__recipient", flat=True)) == [keen.pk]


# --- the SLA pre-save hook -------------------------------------------------------------------


def test_sla_state_is_recorded_on_save_and_on_decisions(api_client_for, tenant, role_holder):
    make_definition(tenant)
    legal, stand_in = role_holder("legal"), UserFactory(tenant=tenant)
    contract = start_contract(tenant, UserFactory(tenant=tenant))
    approval = WorkflowStageApproval.objects.get(contract=contract)
    assert "sla" not in approval.metadata  # bulk-created: the hook is bypassed by design

    # Past due, with metadata another writer keeps there.
    WorkflowStageApproval.objects.filter(pk=approval.pk).update(
        due_at=timezone.now() - timedelta(hours=1), metadata={"source": "import"}
    )
    act(api_client_for(legal), contract.pk, "delegate", delegate_to=str(stand_in.pk))

    approval.refresh_from_db()
    assert approval.status == "delegated"
    assert approval.metadata["source"] == "import"  # the hook merged its key in
    assert approval.metadata["sla"]["overdue"] is True
    successor = WorkflowStageApproval.objects.get(delegated_from=approval)
    assert successor.metadata["sla"]["overdue"] is True  # inherits the due date, already past

    WorkflowStageApproval.objects.filter(pk=successor.pk).update(
        due_at=timezone.now() + timedelta(hours=1)
    )
    act(api_client_for(stand_in), contract.pk)
    successor.refresh_from_db()
    assert successor.status == "approved"
    assert successor.metadata["sla"]["overdue"] is False
    checked = successor.metadata["sla"]["checked_at"]
    assert datetime.fromisoformat(checked) >= successor.decided_at


def test_sla_state_is_not_recorded_without_a_due_date(tenant):
    make_definition(tenant, stages=[{"stage_name": "Open", "sequence": 1, "approvers": ["ops"]}])
    contract = start_contract(tenant, UserFactory(tenant=tenant))
    WorkflowStageApproval.objects.filter(contract=contract).update(due_at=None)
    approval = WorkflowStageApproval.objects.get(contract=contract)
    approval.comments = "touched"
    approval.save()
    approval.refresh_from_db()
    assert approval.due_at is None
    assert "sla" not in approval.metadata
