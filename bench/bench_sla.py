"""Benchmark the SLA check at scale against a row-by-row baseline.

Run from the repository root: ``python bench/bench_sla.py`` (or ``make bench``);
``--approvals N`` changes the data size (default 1,000,000), ``--sample N`` and
``--small-sample N`` the baseline's samples (10,000 and 2,000 breaches).

Data, generated server-side with ``INSERT ... SELECT generate_series`` on the minimal parent rows
(4 tenants, 10,000 contracts each with an active instance and one pending stage, 100 approvals
per stage): N pending approvals, of which

* 10 % are overdue (due 1 min to 16 h ago) and not yet marked: the first check breaches them;
  half of them are named approvals (``assigned_to``), half role approvals (2 holders each); the
  stages of two tenants are governed by a rule escalating to a role with 1 holder;
* 1 % are in their reminder window (past ``remind_at``, not yet due, never reminded);
* the rest are due 13 h to 60 h from now (reminders in the future).

One tenant has a webhook endpoint subscribed to the SLA events.

Measured, in one process on the benchmark database (``bench/_django.py``):

* **ours, first check**: ``approvals.services.sla_check_breaches()`` for every tenant: all the
  breaches, overdue marks, audit rows, notifications (with email and webhook deliveries),
  escalations and reminders;
* **ours, second check**: the same call again, with nothing new to do;
* **row-by-row baseline**: what a straightforward ORM implementation does: select the overdue
  unmarked approvals, then for each create the ``SLABreach``, ``save()`` the approval (its
  ``pre_save`` listeners run), write the audit rows with ``audit_record``, and create each
  notification and each delivery on its own (role holders looked up per approval, the email
  preference per recipient, the subscribed webhooks per event); reminders likewise. It runs
  on samples of the first check's approvals (breaches plus the same share of reminders, reset to
  their state before the first check, on the full-size tables): in one transaction (its fastest
  variant, the target's reference) on ``--sample`` breaches and on ``--small-sample`` ones, so
  the cost per approval at two sample sizes shows whether it grows with the sample; and with a
  transaction per approval (as a job that must not lose all on one failure) on the small one.
  Each run's time and statement count are extrapolated linearly (x full breaches / sample
  breaches) to the full first check: clearly marked as such. Its second check (nothing new) is
  measured, not extrapolated.

Statements are counted as they go on the wire (``measured`` of ``bench/_util.py``): a connection
``execute_wrapper`` plus the BEGIN and COMMIT the backend sends around each transaction, on every
session of the check.
"""

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _django
from _util import measured, print_table, stopwatch

TENANTS = 4
STAGES = 10_000
DEFAULT_APPROVALS = 1_000_000
DEFAULT_SAMPLE = 10_000
DEFAULT_SMALL_SAMPLE = 2_000
JOBS = 2  # check_sla_breaches --jobs default
TARGET_SPEEDUP = 50
TARGET_FIRST_S = 30
TARGET_SECOND_S = 2


# --- maintenance -------------------------------------------------------------------------


def vacuum_analyze(tables) -> None:
    with _django.maintenance_cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}")


def checkpoint() -> None:
    """Start each measured run from a fresh checkpoint, so none pays for the previous step's
    dirty pages (the server's own checkpoints, by time or WAL volume, still happen during runs)."""
    import psycopg

    try:
        with _django.maintenance_cursor("admin") as cursor:
            cursor.execute("CHECKPOINT")
    except psycopg.Error:  # not a superuser (or pg_checkpoint) on an external server: skip
        pass


def reset_all() -> None:
    """Undo a first check (audit rows stay: the log is append-only), then vacuum, so another
    first check starts from the same state on compact tables."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM notifications_delivery WHERE event_type LIKE 'sla_%%'")
        cursor.execute(
            "DELETE FROM notifications_notification WHERE notification_type LIKE 'sla_%%'"
        )
        cursor.execute("DELETE FROM approvals_slabreach")
        cursor.execute(
            "UPDATE approvals_workflowstageapproval SET overdue_at = NULL, reminded_at = NULL,"
            " metadata = '{}' WHERE overdue_at IS NOT NULL OR reminded_at IS NOT NULL"
        )
    vacuum_analyze(
        (
            "notifications_delivery",
            "notifications_notification",
            "approvals_slabreach",
            "approvals_workflowstageapproval",
            "audit_auditlog",
        )
    )


# --- data ------------------------------------------------------------------------------------


def create_parents() -> list[dict]:
    """Tenants with their users, roles, rule, definition; returns ids per tenant."""
    from approvals.services import sla_rule_create
    from notifications.models import WebhookEndpoint
    from tenancy.models import Tenant, User, UserRole
    from workflows.services import definition_create

    tenants = []
    for number in range(TENANTS):
        tenant = Tenant.objects.create(name=f"Bench SLA {number}", slug=f"bench-sla-{number}")

        def user(name: str, tenant=tenant, **fields):
            return User.objects.create_user(
                f"{name}@{tenant.slug}.example",
                password=None,
                tenant=tenant,
                full_name=name,
                **fields,
            )

        admin = user("admin", is_tenant_admin=True)
        creator = user("requester")
        named = user("named-approver")
        for index in range(2):
            UserRole.objects.create(tenant=tenant, user=user(f"legal-{index}"), role="legal")
        UserRole.objects.create(tenant=tenant, user=user("lead"), role="legal-lead")
        escalates = number < TENANTS // 2
        rule = sla_rule_create(
            tenant=tenant,
            created_by=admin,
            sla_hours=48,
            escalation_enabled=escalates,
            escalate_to_role="legal-lead" if escalates else None,
        )
        definition = definition_create(
            tenant=tenant,
            created_by=admin,
            name="Bench review",
            trigger_conditions={"contract_type": "BENCH"},
            stages=[{"stage_name": "Legal Review", "sequence": 1, "approvers": ["legal"]}],
        )
        if number == 0:
            WebhookEndpoint.objects.create(
                tenant=tenant,
                url="https://hooks.example.com/clm",
                events=["sla_reminder", "sla_breached", "sla_escalated"],
                secret="bench-secret-0123456789",
            )
        tenants.append(
            {
                "tenant": tenant.pk,
                "creator": creator.pk,
                "named": named.pk,
                "rule": rule.pk,
                "definition": definition.pk,
                "version": definition.versions.get(version=definition.version).pk,
            }
        )
    return tenants


def _tenant_values(tenants: list[dict], params) -> str:
    """A VALUES list ``(k, tenant, creator, named, rule, definition, version)``."""
    rows = []
    for k, ids in enumerate(tenants):
        cells = [str(k)] + [
            params.add(ids[key], "uuid")
            for key in ("tenant", "creator", "named", "rule", "definition", "version")
        ]
        rows.append(f"({', '.join(cells)})")
    return (
        f"(VALUES {', '.join(rows)}) AS t (k, tenant_id, creator_id, named_id, rule_id, "
        "definition_id, version_id)"
    )


def generate(tenants: list[dict], approvals: int) -> None:
    """Contracts, instances, stages and the approvals, by INSERT ... SELECT generate_series."""
    from django.db import connection

    from approvals.models import WorkflowInstance, WorkflowStage, WorkflowStageApproval
    from contracts.models import Contract
    from core.sql import Params, insert_select

    def uuid_of(kind: str, number: str) -> str:
        return f"md5('{kind}' || {number})::uuid"

    params = Params()
    tenant_of_stage = _tenant_values(tenants, params)
    # ("%%" is the modulo operator: the SQL goes through psycopg's parameter formatting.)
    stages = f"generate_series(0, {STAGES - 1}) AS s(n) JOIN {tenant_of_stage}"
    stages += f" ON t.k = s.n %% {TENANTS}"
    parents = [
        insert_select(
            Contract,
            {
                "id": uuid_of("contract", "s.n"),
                "tenant_id": "t.tenant_id",
                "title": "'Bench contract ' || s.n",
                "contract_type": "'BENCH'",
                "created_by_id": "t.creator_id",
                "status": "'in_review'",
            },
            stages,
            params,
        ),
        insert_select(
            WorkflowInstance,
            {
                "id": uuid_of("instance", "s.n"),
                "tenant_id": "t.tenant_id",
                "contract_id": uuid_of("contract", "s.n"),
                "definition_id": "t.definition_id",
                "definition_version_id": "t.version_id",
                "status": "'active'",
                "current_sequence": "1",
                "started_at": "now() - interval '48 hours'",
            },
            stages,
            params,
        ),
        insert_select(
            WorkflowStage,
            {
                "id": uuid_of("stage", "s.n"),
                "tenant_id": "t.tenant_id",
                "instance_id": uuid_of("instance", "s.n"),
                "sequence": "1",
                "stage_name": "'Legal Review'",
                "approval_type": "'all'",
                "approvers": "ARRAY['legal']::varchar[]",
                "status": "'pending'",
                "started_at": "now() - interval '48 hours'",
                "sla_rule_id": "t.rule_id",
            },
            stages,
            params,
        ),
    ]
    # Approval g is number i = g / STAGES (0-99) of stage g % STAGES, so every stage, hence
    # every tenant, gets the same mix: i % 10 = 0 overdue (i % 20 = 10 of them named
    # approvals), i % 100 = 1 in the reminder window.
    due = (
        f"CASE WHEN (g / {STAGES}) %% 10 = 0 THEN now() - (1 + g %% 960) * interval '1 minute'"
        f" WHEN (g / {STAGES}) %% 100 = 1"
        " THEN now() + interval '1 hour' + (g %% 600) * interval '1 minute'"
        " ELSE now() + interval '13 hours' + (g %% 2820) * interval '1 minute' END"
    )
    named = f"(g / {STAGES}) %% 20 = 10"
    approvals_sql = insert_select(
        WorkflowStageApproval,
        {
            "tenant_id": "t.tenant_id",
            "stage_id": uuid_of("stage", f"(g %% {STAGES})"),
            "instance_id": uuid_of("instance", f"(g %% {STAGES})"),
            "contract_id": uuid_of("contract", f"(g %% {STAGES})"),
            "approver": f"CASE WHEN {named} THEN 'user:' || t.named_id ELSE 'legal' END",
            "role": f"CASE WHEN {named} THEN '' ELSE 'legal' END",
            "assigned_to_id": f"CASE WHEN {named} THEN t.named_id END",
            "status": "'pending'",
            "due_at": "d.due",
            "remind_at": "d.due - interval '12 hours'",
            "created_at": "d.due - interval '48 hours'",
        },
        f"generate_series(0, {approvals - 1}) AS g"
        f" JOIN {tenant_of_stage} ON t.k = (g %% {STAGES}) %% {TENANTS}"
        f" CROSS JOIN LATERAL (SELECT {due} AS due) d",
        params,
    )
    with connection.cursor() as cursor:
        for sql in parents:
            cursor.execute(sql, params)
        cursor.execute(approvals_sql, params)
    vacuum_analyze(
        (
            "contracts_contract",
            "approvals_workflowinstance",
            "approvals_workflowstage",
            "approvals_workflowstageapproval",
        )
    )


# --- the baseline ----------------------------------------------------------------------------


class RowByRow:
    """The check written the obvious way: select the rows, then one row at a time, each row it
    writes created on its own (as ``Model.objects.create`` / ``save()`` do), each lookup made where
    it is needed: the role's holders per approval, the email preference per recipient, the
    tenant's subscribed webhooks per event.

    ``per_row=True`` commits each approval's writes in their own transaction, as a row-by-row job
    does so that one failure does not undo the others and no lock is held for the whole run;
    ``per_row=False`` runs everything in one transaction: the most favourable variant for it,
    hence the reference of the speed-up target.
    """

    def __init__(self, now, *, per_row: bool) -> None:
        self.now = now
        self.per_row = per_row
        self.found = {"breached": 0, "escalated": 0, "reminded": 0}

    def __call__(self) -> dict:
        from contextlib import nullcontext

        from django.db import transaction

        from approvals.models import ApprovalStatus, WorkflowStageApproval

        now = self.now
        each = transaction.atomic if self.per_row else nullcontext
        with nullcontext() if self.per_row else transaction.atomic():
            overdue = (
                WorkflowStageApproval.objects.filter(
                    status=ApprovalStatus.PENDING, overdue_at__isnull=True, due_at__lt=now
                )
                .select_related("stage__sla_rule", "contract")
                .order_by("id")
            )
            for approval in overdue:
                with each():
                    self.breach(approval)
            due = (
                WorkflowStageApproval.objects.filter(
                    status=ApprovalStatus.PENDING,
                    reminded_at__isnull=True,
                    overdue_at__isnull=True,
                    remind_at__lte=now,
                    due_at__gte=now,
                )
                .select_related("stage", "contract")
                .order_by("id")
            )
            for approval in due:
                with each():
                    self.remind(approval)
        return self.found

    def breach(self, approval) -> None:
        from approvals.models import SLABreach
        from audit.services import audit_record

        now = self.now
        rule = approval.stage.sla_rule
        escalates = rule is not None and rule.is_active and rule.escalation_enabled
        role = rule.escalate_to_role if escalates else None
        breach = SLABreach.objects.create(
            tenant_id=approval.tenant_id,
            approval=approval,
            contract_id=approval.contract_id,
            stage_name=approval.stage.stage_name,
            due_at=approval.due_at,
            breached_at=now,
            escalated_to=role,
            escalated_at=now if role else None,
        )
        approval.overdue_at = now
        approval.save(update_fields=["overdue_at", "metadata"])  # pre_save: metadata
        audit_record(
            action="sla_breached",
            tenant=approval.tenant_id,
            resource=approval,
            changes={"breach": [None, str(breach.pk)]},
        )
        payload = {"approval_id": str(approval.pk), "breach_id": str(breach.pk)}
        self.notify(approval, "sla_breached", self.approvers(approval), payload)
        self.found["breached"] += 1
        if role:
            audit_record(
                action="sla_escalated",
                tenant=approval.tenant_id,
                resource=approval,
                changes={"escalated_to": [None, role]},
            )
            holders = self.holders(approval.tenant_id, role)
            self.notify(approval, "sla_escalated", holders, payload)
            self.found["escalated"] += 1

    def remind(self, approval) -> None:
        approval.reminded_at = self.now
        approval.save(update_fields=["reminded_at", "metadata"])
        payload = {"approval_id": str(approval.pk)}
        self.notify(approval, "sla_reminder", self.approvers(approval), payload)
        self.found["reminded"] += 1

    def holders(self, tenant_id, role) -> list:
        from tenancy.models import UserRole
        from tenancy.selectors import active_roles_q

        return list(
            UserRole.objects.filter(tenant_id=tenant_id, role=role, user__is_active=True)
            .filter(active_roles_q(self.now))
            .values_list("user_id", flat=True)
        )

    def approvers(self, approval) -> list:
        if approval.assigned_to_id:
            return [approval.assigned_to_id]
        creator = approval.contract.created_by_id
        return [pk for pk in self.holders(approval.tenant_id, approval.role) if pk != creator]

    def notify(self, approval, kind: str, recipients: list, payload: dict) -> None:
        from notifications.models import (
            Delivery,
            Notification,
            NotificationPreference,
            WebhookEndpoint,
        )

        title = f"{kind}: {approval.contract.title} ({approval.stage.stage_name})"
        for recipient in recipients:
            notification = Notification.objects.create(
                tenant_id=approval.tenant_id,
                recipient_id=recipient,
                notification_type=kind,
                title=title,
                message=title,
                payload=payload,
            )
            opted_out = NotificationPreference.objects.filter(
                user_id=recipient, notification_type=kind, email_enabled=False
            ).exists()
            if not opted_out:
                Delivery.objects.create(
                    tenant_id=approval.tenant_id,
                    channel="email",
                    notification=notification,
                    event_type=kind,
                )
        endpoints = WebhookEndpoint.objects.filter(
            tenant_id=approval.tenant_id, is_active=True, events__contains=[kind]
        ).values_list("pk", flat=True)
        for endpoint in endpoints:
            Delivery.objects.create(
                tenant_id=approval.tenant_id,
                channel="webhook",
                endpoint_id=endpoint,
                event_type=kind,
                payload={"event": kind, "data": payload},
            )


def reset_sample(breaches: int, reminders: int) -> None:
    """Put ``breaches`` breached and ``reminders`` reminded approvals back as they were."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH sample AS (
                SELECT approval_id FROM approvals_slabreach ORDER BY approval_id LIMIT %s
            ), gone AS (
                DELETE FROM approvals_slabreach b USING sample s
                WHERE b.approval_id = s.approval_id RETURNING b.approval_id
            )
            UPDATE approvals_workflowstageapproval a SET overdue_at = NULL
            FROM gone g WHERE a.id = g.approval_id
            """,
            [breaches],
        )
        cursor.execute(
            """
            UPDATE approvals_workflowstageapproval SET reminded_at = NULL
            WHERE id IN (
                SELECT id FROM approvals_workflowstageapproval
                WHERE status = 'pending' AND reminded_at IS NOT NULL ORDER BY id LIMIT %s
            )
            """,
            [reminders],
        )


# --- the run ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--approvals", type=int, default=DEFAULT_APPROVALS)
    parser.add_argument(
        "--sample", type=int, default=DEFAULT_SAMPLE, help="breaches of the baseline's large sample"
    )
    parser.add_argument(
        "--small-sample",
        type=int,
        default=DEFAULT_SMALL_SAMPLE,
        help="breaches of the baseline's small sample",
    )
    options = parser.parse_args()
    load = os.getloadavg()[0]
    _django.setup()

    from django.utils import timezone

    from approvals.services import sla_check_breaches

    with stopwatch() as generation:
        tenants = create_parents()
        generate(tenants, options.approvals)

    # One session first, on the fresh data; then, undone, the command's default: two sessions.
    checkpoint()
    serial_s, serial_n, _, serial = measured(lambda: sla_check_breaches(now=timezone.now(), jobs=1))
    reset_all()
    checkpoint()
    first_s, first_n, _, first = measured(lambda: sla_check_breaches(now=timezone.now(), jobs=JOBS))
    second_s, second_n, _, second = measured(
        lambda: sla_check_breaches(now=timezone.now(), jobs=JOBS)
    )
    assert (serial.breached, serial.reminded) == (first.breached, first.reminded)

    # The baselines, each on a sample with the first check's proportions of breaches and
    # reminders: in one transaction on the small and on the large sample (the cost per approval
    # at two sizes shows whether it grows with the sample), then a transaction per approval on
    # the small one. Each is extrapolated linearly from its own sample.
    baselines = []
    for label, per_row, size in (
        (ONE_TRANSACTION, False, options.small_sample),
        (ONE_TRANSACTION, False, options.sample),
        (PER_APPROVAL, True, options.small_sample),
    ):
        breaches = min(size, first.breached)
        scale = first.breached / breaches if breaches else 0
        reminders = round(first.reminded / scale) if scale else 0
        reset_sample(breaches, reminders)
        checkpoint()
        took, statements, _, found = measured(RowByRow(timezone.now(), per_row=per_row))
        assert found["breached"] == breaches, (found, breaches)
        baselines.append(Baseline(label, breaches, reminders, scale, took, statements, found))
    base2_s, base2_n, _, base2 = measured(RowByRow(timezone.now(), per_row=True))
    assert base2["breached"] == base2["reminded"] == 0, base2

    print(
        f"{_django.database_description()}; load average {load:.1f} at start on "
        f"{os.cpu_count()} CPUs. {options.approvals:,} pending approvals on {STAGES:,} stages of "
        f"{TENANTS} tenants (generated in {generation.seconds:.0f} s): {first.checked:,} overdue "
        f"(10 %), {first.reminded:,} in their reminder window."
    )
    acted_on = first.breached + first.reminded
    found = "breached / escalated / reminded"
    rows = [
        ["run", "approvals acted on", found, "seconds", "ms / approval", "statements"],
        [
            f"ours: first check, {JOBS} sessions (the command's default)",
            f"{acted_on:,}",
            f"{first.breached:,} / {first.escalated:,} / {first.reminded:,}",
            f"{first_s:.2f}",
            _per_approval(first_s, acted_on),
            first_n,
        ],
        [
            "ours: first check, one session",
            f"{serial.breached + serial.reminded:,}",
            f"{serial.breached:,} / {serial.escalated:,} / {serial.reminded:,}",
            f"{serial_s:.2f}",
            _per_approval(serial_s, acted_on),
            serial_n,
        ],
        [
            f"ours: second check (nothing new), {JOBS} sessions",
            "0",
            f"{second.breached} / {second.escalated} / {second.reminded}",
            f"{second_s:.3f}",
            "",
            second_n,
        ],
        *[row for baseline in baselines for row in baseline.rows(acted_on)],
        [
            "row-by-row: second check (nothing new), measured",
            "0",
            "0 / 0 / 0",
            f"{base2_s:.3f}",
            "",
            base2_n,
        ],
    ]
    print_table("SLA check: breaches, escalations and reminders", rows)
    # The target's baseline: one transaction (its fastest variant), from the large sample.
    one_txn_s = baselines[1].extrapolated_s
    per_approval_s = baselines[2].extrapolated_s
    speedup = one_txn_s / first_s
    verdicts = [
        f"speed-up vs row-by-row in one transaction (extrapolated from {baselines[1].breaches:,} "
        f"breaches): {speedup:.0f}x with {JOBS} sessions (target >= {TARGET_SPEEDUP}x), "
        f"{one_txn_s / serial_s:.0f}x with one; vs a transaction per approval: "
        f"{per_approval_s / first_s:.0f}x and {per_approval_s / serial_s:.0f}x",
        f"first check {first_s:.1f} s (target < {TARGET_FIRST_S} s)",
        f"second check {second_s:.2f} s (target < {TARGET_SECOND_S} s)",
    ]
    met = speedup >= TARGET_SPEEDUP and first_s < TARGET_FIRST_S and second_s < TARGET_SECOND_S
    print("; ".join(verdicts) + f": {'met' if met else 'NOT met'}.")
    print(
        "Statements on the wire, BEGIN/COMMIT included. The first check also wrote "
        f"{_written_summary()}."
    )


ONE_TRANSACTION = "one transaction"
PER_APPROVAL = "a transaction per approval"


def _per_approval(seconds: float, approvals: int) -> str:
    return f"{seconds * 1000 / approvals:.2f}" if approvals else ""


@dataclass
class Baseline:
    """One measured run of the row-by-row baseline on a sample, and its extrapolation."""

    label: str
    breaches: int
    reminders: int
    scale: float
    took: float
    statements: int
    found: dict

    @property
    def extrapolated_s(self) -> float:
        return self.took * self.scale

    def rows(self, acted_on: int) -> list[list]:
        found = self.found
        sample = self.breaches + self.reminders
        return [
            [
                f"row-by-row, {self.label}: measured on {self.breaches:,} + {self.reminders:,}",
                f"{sample:,}",
                f"{found['breached']:,} / {found['escalated']:,} / {found['reminded']:,}",
                f"{self.took:.2f}",
                _per_approval(self.took, sample),
                f"{self.statements:,}",
            ],
            [
                f"row-by-row, {self.label}: EXTRAPOLATED x{self.scale:.0f}",
                f"{acted_on:,}",
                "(as ours)",
                f"{self.extrapolated_s:.0f}",
                _per_approval(self.extrapolated_s, acted_on),
                f"{round(self.statements * self.scale):,}",
            ],
        ]


def _written_summary() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM notifications_notification WHERE notification_type "
            "LIKE 'sla_%%'), (SELECT count(*) FROM notifications_delivery WHERE event_type "
            "LIKE 'sla_%%'), (SELECT count(*) FROM audit_auditlog WHERE action LIKE 'sla_%%')"
        )
        notifications, deliveries, audit = cursor.fetchone()
    return (
        f"(with the baseline's sample) {notifications:,} notifications, {deliveries:,} "
        f"deliveries and {audit:,} audit rows"
    )


if __name__ == "__main__":
    main()
