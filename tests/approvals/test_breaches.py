"""The SLA check: breaches, escalation, reminders; the command and the endpoints that run it."""

import io
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import SLABreach, WorkflowStageApproval
from approvals.orchestrator import approval_act
from approvals.services import sla_check_breaches, sla_rule_create, sla_rule_update
from audit.models import AuditLog
from core import rls
from notifications.models import Delivery, Notification, NotificationPreference
from tests.factories import TenantFactory, UserFactory, WebhookEndpointFactory
from tests.fixtures import define, holder, pending_approvals, stage, start

pytestmark = pytest.mark.django_db

US = timedelta(microseconds=1)
CHECK = "/api/admin/sla-breaches/check_breaches/"
BREACHES = "/api/admin/sla-breaches/"
SLA_TYPES = ("sla_reminder", "sla_breached", "sla_escalated")


@dataclass
class Setup:
    tenant: object
    contract: object
    approval: WorkflowStageApproval
    creator: object
    approvers: set  # who hears of the breach
    escalation: set  # who hears of the escalation
    rule: object


def build(tenant, *, contract_type="SLA", escalate=True) -> Setup:
    """A 10-hour rule on "Legal Review" escalating to `legal-lead`, and one pending approval.

    Among the `legal` holders only two are notifiable: the contract's creator, an expired role
    and an inactive user are not. Among the `legal-lead` holders, one role has expired by the
    time the check runs (it was still valid when the workflow started).
    """
    admin = UserFactory(tenant=tenant, is_tenant_admin=True)
    with rls.tenant_scope(tenant):
        rule = sla_rule_create(
            tenant=tenant,
            created_by=admin,
            contract_type=contract_type,
            stage_name="Legal Review",
            sla_hours=10,
            escalation_enabled=escalate,
            escalate_to_role="legal-lead",
        )
    define(tenant, [stage("Legal Review", ["legal"])], contract_type=contract_type)
    creator = holder(tenant, "legal")
    approvers = {holder(tenant, "legal"), holder(tenant, "legal")}
    holder(tenant, "legal", expires_at=timezone.now() - timedelta(days=1))
    inactive = holder(tenant, "legal")
    inactive.is_active = False
    inactive.save(update_fields=["is_active"])
    escalation = {holder(tenant, "legal-lead"), holder(tenant, "legal-lead")}
    holder(tenant, "legal-lead", expires_at=timezone.now() + timedelta(hours=5))
    holder(tenant, "legal-lead-deputy")
    contract = start(tenant, contract_type=contract_type, creator=creator)
    [approval] = pending_approvals(contract)
    return Setup(tenant, contract, approval, creator, approvers, escalation, rule)


@pytest.fixture
def setup(tenant) -> Setup:
    return build(tenant)


def after_due(setup: Setup) -> datetime:
    return setup.approval.due_at + US


def recipients(notification_type: str, **filters) -> list:
    return sorted(
        Notification.objects.filter(notification_type=notification_type, **filters).values_list(
            "recipient_id", flat=True
        )
    )


def ids(users) -> list:
    return sorted(user.pk for user in users)


def sla_rows() -> dict:
    """Everything the check writes, counted."""
    return {
        "breaches": SLABreach.objects.count(),
        "notifications": Notification.objects.filter(notification_type__in=SLA_TYPES).count(),
        "deliveries": Delivery.objects.filter(event_type__in=SLA_TYPES).count(),
        "audit": AuditLog.objects.filter(action__in=["sla_breached", "sla_escalated"]).count(),
        "overdue": WorkflowStageApproval.objects.filter(overdue_at__isnull=False).count(),
        "reminded": WorkflowStageApproval.objects.filter(reminded_at__isnull=False).count(),
    }


# --- the boundary -------------------------------------------------------------------------------


def test_exactly_at_due_is_not_yet_a_breach(setup):
    due = setup.approval.due_at
    assert setup.approval.is_overdue(due) is False

    at_due = sla_check_breaches(now=due)

    assert (at_due.checked, at_due.breached) == (0, 0)
    assert SLABreach.objects.count() == 0

    just_after = sla_check_breaches(now=due + US)

    assert (just_after.checked, just_after.breached, just_after.escalated) == (1, 1, 1)
    assert setup.approval.is_overdue(due + US) is True


# --- what a breach writes ---------------------------------------------------------------------


def test_a_breach_records_marks_audits_notifies_and_escalates(setup):
    now = after_due(setup)

    result = sla_check_breaches(now=now)

    assert result.as_dict() == {"checked": 1, "breached": 1, "escalated": 1, "reminded": 0}
    breach = SLABreach.objects.get()
    assert (breach.approval_id, breach.contract_id, breach.tenant_id) == (
        setup.approval.pk,
        setup.contract.pk,
        setup.tenant.pk,
    )
    assert (breach.stage_name, breach.due_at, breach.breached_at) == (
        "Legal Review",
        setup.approval.due_at,
        now,
    )
    assert (breach.escalated_to, breach.escalated_at) == ("legal-lead", now)

    approval = WorkflowStageApproval.objects.get(pk=setup.approval.pk)
    assert approval.overdue_at == now
    assert approval.status == "pending"
    assert approval.metadata["sla"] == {"overdue": True, "checked_at": now.isoformat()}

    audit = {row.action: row for row in AuditLog.objects.filter(action__startswith="sla_b")}
    breached = audit["sla_breached"]
    assert (breached.tenant_id, breached.resource_type, breached.resource_id) == (
        setup.tenant.pk,
        "workflowstageapproval",
        str(setup.approval.pk),
    )
    assert breached.changes["breach"] == [None, str(breach.pk)]
    assert breached.changes["stage_name"] == [None, "Legal Review"]
    escalated = AuditLog.objects.get(action="sla_escalated")
    assert escalated.changes["escalated_to"] == [None, "legal-lead"]

    # The approver: active, unexpired holders of the role, not the contract's creator.
    assert recipients("sla_breached") == ids(setup.approvers)
    # The escalation: active holders of the escalation role whose role has not expired.
    assert recipients("sla_escalated") == ids(setup.escalation)
    notification = Notification.objects.filter(notification_type="sla_breached").first()
    assert notification.tenant_id == setup.tenant.pk
    assert notification.priority == "high"
    assert notification.title == f"SLA breached: {setup.contract.title} (Legal Review)"
    assert "is overdue" in notification.message
    assert notification.payload["approval_id"] == str(setup.approval.pk)
    assert notification.payload["breach_id"] == str(breach.pk)
    assert notification.payload["escalated_to"] == "legal-lead"


def test_emails_respect_opt_outs_and_webhooks_get_each_event_once(setup):
    opted_out = sorted(setup.approvers, key=lambda user: user.pk)[0]
    NotificationPreference.objects.create(
        tenant=setup.tenant, user=opted_out, notification_type="sla_breached", email_enabled=False
    )
    hook = WebhookEndpointFactory(tenant=setup.tenant, events=["sla_breached", "sla_escalated"])
    WebhookEndpointFactory(tenant=setup.tenant, events=["approval_assigned"])
    WebhookEndpointFactory(tenant=setup.tenant, events=["sla_breached"], is_active=False)

    sla_check_breaches(now=after_due(setup))

    emails = Delivery.objects.filter(channel="email", event_type="sla_breached")
    assert sorted(emails.values_list("notification__recipient_id", flat=True)) == ids(
        setup.approvers - {opted_out}
    )
    assert Delivery.objects.filter(channel="email", event_type="sla_escalated").count() == 2
    hooks = Delivery.objects.filter(channel="webhook", event_type__in=SLA_TYPES)
    assert sorted(hooks.values_list("event_type", flat=True)) == ["sla_breached", "sla_escalated"]
    assert set(hooks.values_list("endpoint_id", flat=True)) == {hook.pk}
    body = hooks.get(event_type="sla_breached").payload
    assert body["event"] == "sla_breached"
    assert body["tenant"] == str(setup.tenant.pk)
    assert body["event_id"] == str(hooks.get(event_type="sla_breached").event_id)
    assert body["data"]["approval_id"] == str(setup.approval.pk)
    assert all(row.status == "pending" for row in hooks)


def test_a_named_approver_is_notified_alone(tenant):
    named = UserFactory(tenant=tenant)
    holder(tenant, "legal")
    sla_rule_create(
        tenant=tenant, created_by=named, stage_name="Review", sla_hours=2, escalation_enabled=False
    )
    define(tenant, [stage("Review", [f"user:{named.pk}"])])
    [approval] = pending_approvals(start(tenant))

    result = sla_check_breaches(now=approval.due_at + US)

    assert (result.breached, result.escalated) == (1, 0)
    assert recipients("sla_breached") == [named.pk]
    assert recipients("sla_escalated") == []
    assert SLABreach.objects.get().escalated_to is None


@pytest.mark.parametrize("change", ["escalation_off", "rule_inactive", "rule_deleted"])
def test_escalation_follows_the_rule_at_check_time(setup, change):
    if change == "rule_deleted":
        setup.rule.delete()
    else:
        fields = {"escalation_enabled": False} if change == "escalation_off" else {}
        fields |= {"is_active": False} if change == "rule_inactive" else {}
        sla_rule_update(
            rule_id=setup.rule.pk, tenant=setup.tenant, updated_by=setup.creator, **fields
        )

    result = sla_check_breaches(now=after_due(setup))

    assert (result.breached, result.escalated) == (1, 0)
    assert recipients("sla_escalated") == []
    assert recipients("sla_breached") == ids(setup.approvers)


def test_decided_approvals_never_breach(setup):
    approver = next(iter(setup.approvers))
    approval_act(
        tenant=setup.tenant, contract_id=setup.contract.pk, actor=approver, action="approve"
    )

    result = sla_check_breaches(now=after_due(setup) + timedelta(days=30))

    assert result.as_dict() == {"checked": 0, "breached": 0, "escalated": 0, "reminded": 0}
    assert sla_rows()["breaches"] == 0


# --- idempotency --------------------------------------------------------------------------------


def test_a_second_run_finds_nothing_new(setup):
    now = after_due(setup)
    first = sla_check_breaches(now=now)
    after_first = sla_rows()

    second = sla_check_breaches(now=now + timedelta(hours=1))

    assert first.breached == 1
    assert second.as_dict() == {"checked": 0, "breached": 0, "escalated": 0, "reminded": 0}
    assert sla_rows() == after_first


def test_a_lost_overdue_mark_is_still_a_single_breach(setup):
    """Were the mark missing (say, restored from a backup), the unique breach still holds."""
    now = after_due(setup)
    sla_check_breaches(now=now)
    WorkflowStageApproval.objects.filter(pk=setup.approval.pk).update(overdue_at=None)
    before = sla_rows()

    again = sla_check_breaches(now=now)

    assert (again.checked, again.breached) == (1, 0)
    assert SLABreach.objects.count() == 1
    assert sla_rows()["notifications"] == before["notifications"]
    assert sla_rows()["audit"] == before["audit"]


# --- reminders ----------------------------------------------------------------------------------


def test_reminder_once_at_the_configured_share(setup):
    approval = setup.approval
    # 75% of 10 wall-clock hours.
    assert approval.remind_at - approval.created_at == timedelta(hours=7, minutes=30)

    early = sla_check_breaches(now=approval.remind_at - US)
    at_share = sla_check_breaches(now=approval.remind_at)
    again = sla_check_breaches(now=approval.remind_at + timedelta(hours=1))

    assert (early.reminded, at_share.reminded, again.reminded) == (0, 1, 0)
    assert recipients("sla_reminder") == ids(setup.approvers)
    reminded = WorkflowStageApproval.objects.get(pk=approval.pk)
    assert reminded.reminded_at == approval.remind_at
    assert reminded.metadata["sla"]["overdue"] is False
    note = Notification.objects.filter(notification_type="sla_reminder").first()
    assert (note.priority, note.payload["approval_id"]) == ("medium", str(approval.pk))
    assert SLABreach.objects.count() == 0

    # The breach later still comes, once; no second reminder with it.
    breach = sla_check_breaches(now=after_due(setup))
    assert (breach.breached, breach.reminded) == (1, 0)
    assert len(recipients("sla_reminder")) == len(setup.approvers)


def test_reminder_emails_follow_the_reminder_opt_out(setup):
    """Opt-outs are per type: breach emails off keeps reminder emails, reminder emails off not."""
    quiet, other = sorted(setup.approvers, key=lambda user: user.pk)
    for user, kind in ((quiet, "sla_reminder"), (other, "sla_breached")):
        NotificationPreference.objects.create(
            tenant=setup.tenant, user=user, notification_type=kind, email_enabled=False
        )

    assert sla_check_breaches(now=setup.approval.remind_at).reminded == 1

    assert recipients("sla_reminder") == ids(setup.approvers)
    emails = Delivery.objects.filter(channel="email", event_type="sla_reminder")
    assert list(emails.values_list("notification__recipient_id", flat=True)) == [other.pk]


def test_no_reminder_once_the_approval_is_overdue(setup):
    """A check that first runs after the due date breaches; a late reminder would be noise."""
    result = sla_check_breaches(now=after_due(setup))
    assert (result.breached, result.reminded) == (1, 0)
    assert recipients("sla_reminder") == []
    assert sla_check_breaches(now=after_due(setup) + timedelta(days=1)).reminded == 0


def test_delegation_carries_the_sla_state(setup):
    sla_check_breaches(now=setup.approval.remind_at)
    sla_check_breaches(now=after_due(setup))
    approver, delegate = next(iter(setup.approvers)), UserFactory(tenant=setup.tenant)
    approval_act(
        tenant=setup.tenant,
        contract_id=setup.contract.pk,
        actor=approver,
        action="delegate",
        delegate_to=delegate,
    )
    [successor] = pending_approvals(setup.contract)
    assert successor.assigned_to_id == delegate.pk
    assert successor.overdue_at is not None
    assert successor.is_overdue()
    before = sla_rows()

    result = sla_check_breaches(now=after_due(setup) + timedelta(days=1))

    assert (result.breached, result.reminded) == (0, 0)
    assert sla_rows() == before


# --- statement count ----------------------------------------------------------------------------


def _statements_for(overdue: int) -> tuple[int, int]:
    tenant = TenantFactory()
    with rls.tenant_scope(tenant):
        return _statements_of_tenant(tenant, overdue)


def _statements_of_tenant(tenant, overdue: int) -> tuple[int, int]:
    admin = UserFactory(tenant=tenant, is_tenant_admin=True)
    sla_rule_create(
        tenant=tenant,
        created_by=admin,
        sla_hours=1,
        escalation_enabled=True,
        escalate_to_role="lead",
    )
    define(tenant, [stage("Review", ["legal"]), stage("Named", [f"user:{admin.pk}"])])
    holder(tenant, "legal")
    holder(tenant, "lead")
    WebhookEndpointFactory(tenant=tenant, events=list(SLA_TYPES))
    for n in range(overdue):
        start(tenant, title=f"Contract {n}")
    later = timezone.now() + timedelta(hours=2)
    with CaptureQueriesContext(connection) as queries:
        result = sla_check_breaches(tenant=tenant, now=later)
    assert result.breached == 2 * overdue
    return len(queries), result.escalated


def test_statement_count_does_not_grow_with_overdue_approvals():
    one, escalated_one = _statements_for(1)
    fifty, escalated_fifty = _statements_for(50)
    assert (escalated_one, escalated_fifty) == (2, 100)
    assert one == fifty
    # Whether an out-of-office window has rows to move to a cover first, SAVEPOINT, the
    # transaction's settings, the breach statement, the reminder statement, RELEASE (BEGIN/COMMIT
    # outside the test's transaction).
    assert fifty == 6


def test_the_check_statements_run_without_jit(setup):
    """The planner prices them far above jit_above_cost even when nothing is due, and compiling
    them made a check with nothing to do take seconds instead of milliseconds."""
    settings_seen = []

    def jit_setting(execute, sql, params, many, context):
        if "new_breaches AS" in sql or "reminded AS" in sql:  # the breach and reminder statements
            raw = context["cursor"].cursor
            raw.execute("SELECT current_setting('jit')")
            settings_seen.append(raw.fetchone()[0])
        return execute(sql, params, many, context)

    with connection.execute_wrapper(jit_setting):
        first = sla_check_breaches(tenant=setup.tenant, now=after_due(setup))
        second = sla_check_breaches(tenant=setup.tenant, now=after_due(setup))

    assert (first.breached, second.breached) == (1, 0)
    assert settings_seen == ["off"] * 4


# --- the command --------------------------------------------------------------------------------


def run_command(*args) -> str:
    out = io.StringIO()
    call_command("check_sla_breaches", *args, stdout=out)
    return out.getvalue()


@pytest.mark.rls_bypass("checks and counts every tenant's approvals, as the all-tenant check does")
def test_command_checks_every_tenant_and_prints_what_it_found(setup, other_tenant):
    build(other_tenant, contract_type="OTHER", escalate=False)
    # The command uses the real clock: move the due dates into the past instead.
    WorkflowStageApproval.objects.update(due_at=timezone.now() - timedelta(minutes=5))

    output = run_command()

    assert f"{setup.tenant.slug}: 1 past due, recorded 1 breaches (1 escalated)" in output
    assert f"{other_tenant.slug}: 1 past due, recorded 1 breaches (0 escalated)" in output
    assert output.rstrip().endswith(
        "SLA check (all tenants): checked 2, breached 2, escalated 1, reminded 0"
    )
    assert SLABreach.objects.count() == 2
    assert "checked 0, breached 0" in run_command()


def test_command_dry_run_writes_nothing(setup):
    WorkflowStageApproval.objects.update(due_at=timezone.now() - timedelta(minutes=5))
    before = sla_rows()

    output = run_command("--dry-run", "--tenant", setup.tenant.slug)

    assert "[dry run] would record 1 breaches (1 escalated)" in output
    assert f"[dry run] SLA check (tenant {setup.tenant.slug}): checked 1, breached 1" in output
    assert sla_rows() == before
    assert "breached 1" in run_command("--tenant", str(setup.tenant.pk))


@pytest.mark.rls_bypass("checks and counts every tenant's approvals, as the all-tenant check does")
def test_command_tenant_scope(setup, other_tenant):
    other = build(other_tenant, contract_type="OTHER")
    WorkflowStageApproval.objects.update(due_at=timezone.now() - timedelta(minutes=5))

    output = run_command("--tenant", other_tenant.slug)

    assert "breached 1" in output
    assert list(SLABreach.objects.values_list("approval_id", flat=True)) == [other.approval.pk]


def test_command_rejects_an_unknown_tenant(setup):
    with pytest.raises(CommandError, match="No tenant"):
        run_command("--tenant", "no-such-tenant")
    with pytest.raises(CommandError, match="No tenant"):
        run_command("--tenant", str(uuid.uuid4()))
    assert SLABreach.objects.count() == 0


# --- the endpoints ------------------------------------------------------------------------------


@pytest.mark.rls_bypass("compares every tenant's rows before and after one tenant's check")
def test_endpoint_checks_the_callers_tenant_only(api_client_for, setup, other_tenant):
    other = build(other_tenant, contract_type="OTHER")
    WorkflowStageApproval.objects.update(due_at=timezone.now() - timedelta(minutes=5))
    other_before = {
        "approval": WorkflowStageApproval.objects.filter(pk=other.approval.pk).values().get(),
        "notifications": Notification.objects.filter(tenant=other_tenant).count(),
        "audit": AuditLog.objects.filter(tenant=other_tenant).count(),
    }
    client = api_client_for(UserFactory(tenant=setup.tenant, is_tenant_admin=True))

    response = client.post(CHECK, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {"checked": 1, "breached": 1, "escalated": 1, "reminded": 0}
    assert list(SLABreach.objects.values_list("tenant_id", flat=True)) == [setup.tenant.pk]
    assert other_before == {
        "approval": WorkflowStageApproval.objects.filter(pk=other.approval.pk).values().get(),
        "notifications": Notification.objects.filter(tenant=other_tenant).count(),
        "audit": AuditLog.objects.filter(tenant=other_tenant).count(),
    }
    again = client.post(CHECK, {"dry_run": False}, format="json")
    assert again.json() == {"checked": 0, "breached": 0, "escalated": 0, "reminded": 0}
    assert SLABreach.objects.count() == 1


def test_endpoint_dry_run_and_bad_input(api_client_for, setup):
    WorkflowStageApproval.objects.update(due_at=timezone.now() - timedelta(minutes=5))
    client = api_client_for(UserFactory(tenant=setup.tenant, is_tenant_admin=True))

    dry = client.post(CHECK, {"dry_run": True}, format="json")
    bad = client.post(CHECK, {"dry_run": "perhaps"}, format="json")

    assert dry.json() == {"checked": 1, "breached": 1, "escalated": 1, "reminded": 0}
    assert bad.status_code == 400
    assert SLABreach.objects.count() == 0


def test_breach_audit_rows_carry_the_caller(api_client_for, setup):
    WorkflowStageApproval.objects.update(due_at=timezone.now() - timedelta(minutes=5))
    caller = UserFactory(tenant=setup.tenant, is_tenant_admin=True)

    api_client_for(caller).post(CHECK, format="json", HTTP_X_REQUEST_ID="sla-check-42")

    audit = AuditLog.objects.get(action="sla_breached")
    assert (audit.actor_id, audit.request_id) == (caller.pk, "sla-check-42")


def test_breach_list_and_filters(api_client_for, setup, tenant):
    second_contract = start(tenant, creator=setup.creator, title="Second")
    [second] = pending_approvals(second_contract)
    sla_rule_update(
        rule_id=setup.rule.pk, tenant=tenant, updated_by=setup.creator, escalation_enabled=False
    )
    sla_check_breaches(now=after_due(setup))  # the first approval only: escalation is off
    sla_rule_update(
        rule_id=setup.rule.pk, tenant=tenant, updated_by=setup.creator, escalation_enabled=True
    )
    sla_check_breaches(now=second.due_at + US)
    client = api_client_for(UserFactory(tenant=tenant, is_tenant_admin=True))

    body = client.get(BREACHES).json()

    assert body["count"] == 2
    row = body["results"][0]  # newest first
    assert set(row) == {
        "id",
        "approval",
        "contract",
        "stage_name",
        "due_at",
        "breached_at",
        "escalated_to",
        "escalated_at",
    }
    assert (row["approval"], row["escalated_to"]) == (str(second.pk), "legal-lead")

    def listed(**query):
        return [r["approval"] for r in client.get(BREACHES, query).json()["results"]]

    assert listed(escalated="true") == [str(second.pk)]
    assert listed(escalated="false") == [str(setup.approval.pk)]
    assert listed(contract=str(setup.contract.pk)) == [str(setup.approval.pk)]
    assert listed(stage_name="legal review") == [str(second.pk), str(setup.approval.pk)]
    assert listed(contract=str(uuid.uuid4())) == []
    assert client.get(BREACHES, {"contract": "not-a-uuid"}).status_code == 400
    detail = client.get(f"{BREACHES}{row['id']}/")
    assert detail.status_code == 200
    assert detail.json() == row


def test_approvals_api_reports_the_overdue_mark(api_client_for, setup):
    approver = next(iter(setup.approvers))
    client = api_client_for(approver)
    [row] = client.get("/api/approvals/pending/").json()["results"]
    assert row["is_overdue"] is False

    # Marked by a check that ran "later" (its clock ahead of this one): overdue by the mark.
    sla_check_breaches(now=after_due(setup))

    [row] = client.get("/api/approvals/pending/").json()["results"]
    assert row["is_overdue"] is True
    overdue = client.get("/api/approvals/", {"overdue": "true"}).json()["results"]
    assert [r["id"] for r in overdue] == [str(setup.approval.pk)]
    assert client.get("/api/approvals/", {"overdue": "false"}).json()["results"] == []
