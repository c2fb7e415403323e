"""The SQL of the SLA check: set-based, two statements whatever the number of approvals.

``approvals.services.sla_check_breaches`` runs them in one transaction:

1. **Breaches.** One statement of data-modifying CTEs. Pending approvals past due and not yet
   marked (``approval_pending_due_idx``) are inserted into ``approvals_slabreach`` with
   ``ON CONFLICT (approval_id) DO NOTHING RETURNING ...``. Only that RETURNING set drives the side
   effects in the same statement: the overdue mark on the approval, the ``sla_breached`` (and
   ``sla_escalated``) audit rows, and the notifications, written by the notifications app's
   fan-out (``notifications.services.fanout_ctes``, reached through the port ``core.fanout``:
   their emails unless the recipient opted out, one webhook delivery per subscribed endpoint
   and event) to whoever may act on the approval (``tenancy.eligibility``) and to the
   escalation role's holders. A concurrent run inserting the same approval's breach makes this
   one wait on the unique index and then skip the row, so whichever run inserted a breach is
   the only one that notifies for it. Rows are inserted in approval-id order, so two
   overlapping runs take those index locks in the same order and cannot deadlock.
2. **Reminders.** Pending approvals past ``remind_at``, not reminded, not yet due
   (``approval_pending_remind_idx``) are locked in id order (``FOR UPDATE``: a concurrent run
   waits, then re-checks ``reminded_at IS NULL`` and skips them), stamped ``reminded_at`` and the
   approvers get one ``sla_reminder`` each, with email and webhook deliveries as above.

Boundary: an approval is breached when ``due_at < now``; at the due instant itself it is still on
time (as ``WorkflowStageApproval.is_overdue`` sees it). A reminder is due when
``remind_at <= now``.

Set-based writes send no ``post_save``, so everything listeners would have produced is written
here explicitly. The audit rows are built from the audit model (``core.sql.insert_select``, as
the fan-out builds its rows): every column this module does not set gets its model default (a
fresh ``gen_random_uuid()`` for uuid4 keys), so a column added there with a default needs no
change here, and one without a default fails loudly, in the tests.

Cost, for large runs (``bench/bench_sla.py``: 100,000 breaches): what remains is per row written,
so the statements keep that small and independent of the planner's row estimates, which are far
off inside these CTEs (more so under row-level security, whose policy is a filter it cannot
estimate):

* approvals are updated by primary-key lookups (``id = ANY(ARRAY(...))``) whatever the estimate:
  never a scan of the whole table to join the rows to update (only the run that inserted a
  breach marks its approval, so no two runs update the same rows here);
* notifications and webhook deliveries go in in primary-key order
  (``insert_select(key_order=True)``), emails in their notification's order: each index insert
  continues where the previous one stopped instead of a random page. The audit log goes in in
  the order of events (due time, approval, breach before escalation): its ``seq`` numbers rows as
  inserted, so that is the order its listing shows, and its listing indexes, which end with
  ``created_at, seq``, are appended to in order all the same (only its primary key is not);
* email opt-outs are one hash (see ``fanout_ctes``), not a lookup per notification;
* the reminders' rows come from the locking read, not from the UPDATE's RETURNING, whose
  estimate (a few rows) would turn the joins after it into nested loops.

Every value reaches PostgreSQL as a query parameter; the f-strings assemble only this module's
constants, table and column names, hence the file-wide S608 exemption.
"""
# ruff: noqa: S608

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from approvals.models import (
    ApprovalStatus,
    InstanceStatus,
    SLABreach,
    SLARule,
    WorkflowInstance,
    WorkflowStage,
    WorkflowStageApproval,
)
from audit.models import AuditLog
from contracts.models import Contract
from core.fanout import Priority, fanout_ctes
from core.sql import Params, insert_select, sql
from tenancy.eligibility import eligible_approvers_sql

BREACHED = "sla_breached"
ESCALATED = "sla_escalated"
REMINDER = "sla_reminder"
KINDS = ("checked", "breached", "escalated", "reminded")


@dataclass
class SLACheckResult:
    """What one run found or did, in total and per tenant (``{tenant_id: {kind: n}}``)."""

    checked: int = 0
    breached: int = 0
    escalated: int = 0
    reminded: int = 0
    by_tenant: dict = field(default_factory=dict)

    def add(self, tenant_id, kind: str, count: int) -> None:
        if not count:
            return
        setattr(self, kind, getattr(self, kind) + count)
        row = self.by_tenant.setdefault(tenant_id, dict.fromkeys(KINDS, 0))
        row[kind] += count

    def as_dict(self) -> dict:
        return {kind: getattr(self, kind) for kind in KINDS}

    def merge(self, other: "SLACheckResult") -> None:
        for tenant_id, counts in other.by_tenant.items():
            for kind, count in counts.items():
                self.add(tenant_id, kind, count)


# --- shared pieces -----------------------------------------------------------------------------

# Raw SQL: set-based, two statements per run whatever its size (bench/bench_sla.py).
APPROVAL = sql("{a:table}", a=WorkflowStageApproval)
STAGE = sql("{s:table}", s=WorkflowStage)
RULE = sql("{r:table}", r=SLARule)
BREACH = sql("{b:table}", b=SLABreach)
INSTANCE = sql("{i:table}", i=WorkflowInstance)
CONTRACT = sql("{k:table}", k=Contract)
# When the rows are written (their ``created_at``); ``now`` is the instant the check judges.
WRITTEN_AT = "%(written_at)s::timestamptz"


def _params(now: datetime) -> Params:
    return Params(now=now, now_iso=now.isoformat(), written_at=timezone.now())


def _due_text(alias: str) -> str:
    """The due date as messages show it; computed once per event (in ``events``)."""
    return f"to_char({alias}.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC' AS due_text"


ABOUT = """'"' || e.stage_name || '" of contract "' || e.contract_title || '"'"""
TITLE_SUFFIX = "e.contract_title || ' (' || e.stage_name || ')'"


def _sla_metadata(overdue: bool) -> str:
    """What ``approvals.sla.state.record_sla_state`` (pre_save) would have written."""
    return (
        "(CASE WHEN jsonb_typeof(a.metadata) = 'object' THEN a.metadata ELSE '{}'::jsonb END"
        " || jsonb_build_object('sla', jsonb_build_object("
        f"'overdue', {'true' if overdue else 'false'}, 'checked_at', %(now_iso)s::text)))"
    )


def _approver_recipients(event_column: str) -> str:
    """``(event_id, user_id)`` per row of ``events``: whoever may act on its approval and is not
    out of office (``tenancy.eligibility``), as for the ``approval_assigned`` notifications."""
    return eligible_approvers_sql(
        source=f"""SELECT e.{event_column} AS key, e.tenant_id, e.role, e.assigned_to_id,
                          e.contract_creator AS creator_id
                     FROM events e""",
        now="%(now)s",
        told=True,
    )


def _escalation_recipients(event_column: str) -> str:
    """``(event_id, user_id)``: the escalation role's holders, by the same rule (nobody named,
    no creator excluded: they are told, not asked to approve their own)."""
    return eligible_approvers_sql(
        source=f"""SELECT e.{event_column} AS key, e.tenant_id, e.escalated_to AS role,
                          NULL::uuid AS assigned_to_id, NULL::uuid AS creator_id
                     FROM events e WHERE e.escalated_to IS NOT NULL""",
        now="%(now)s",
    )


def _notification_ctes(
    kinds: tuple[str, ...], messages: list[str], recipients: list[str], params: Params
) -> str:
    """The fan-out's CTEs (``core.fanout``: notifications' writer) for these events.

    ``messages``: SELECTs of the fan-out's message columns, one row per event, of types
    ``kinds``; ``recipients``: SELECTs of ``event_id, user_id``. Each SELECT is free of
    duplicates and their event ids differ: UNION ALL, no de-duplication needed.
    """
    return fanout_ctes(
        messages=" UNION ALL ".join(f"({select})" for select in messages),
        recipients=" UNION ALL ".join(f"({select})" for select in recipients),
        kinds=kinds,
        params=params,
        occurred_at="%(now)s::timestamptz",
        now=WRITTEN_AT,
    )


def _tenant_filter(tenant_ids, params: Params, alias: str = "a") -> str:
    """Nothing for every tenant (``None``), else ``tenant_id = ANY(<ids>)``."""
    if tenant_ids is None:
        return ""
    return f"AND {alias}.tenant_id = ANY({params.add(list(tenant_ids), 'uuid[]')})"


# The SLA clock stops while a contract is back with its requester (docs/api.md): the rows of an
# instance in ``changes_requested`` are neither reminded nor breached; resubmitting moves their
# due dates by the pause (``approvals.orchestrator.workflow_resubmit``).
_NOT_WITH_REQUESTER = f"""NOT EXISTS (
            SELECT 1 FROM {INSTANCE} paused
             WHERE paused.id = a.instance_id
               AND paused.status = '{InstanceStatus.CHANGES_REQUESTED}')"""


# --- 1. breaches -------------------------------------------------------------------------------


def _breach_candidates(tenant_ids, params: Params) -> str:
    """Pending approvals past due and not yet marked: the partial index's range scan."""
    return f"""
        SELECT a.id, a.tenant_id, a.instance_id, a.contract_id, a.stage_id, a.role,
               a.assigned_to_id, a.due_at
        FROM {APPROVAL} a
        WHERE a.status = '{ApprovalStatus.PENDING}' AND a.overdue_at IS NULL
          AND a.due_at < %(now)s {_tenant_filter(tenant_ids, params)}
          AND {_NOT_WITH_REQUESTER}
    """


BREACH_MESSAGES = [
    f"""SELECT e.tenant_id, e.breached_event, '{BREACHED}',
        'SLA breached: ' || {TITLE_SUFFIX},
        {ABOUT} || ' was due ' || e.due_text || ' and is overdue.',
        '{Priority.HIGH}', e.payload
    FROM events e""",
    f"""SELECT e.tenant_id, e.escalated_event, '{ESCALATED}',
        'SLA escalated: ' || {TITLE_SUFFIX},
        {ABOUT} || ' was due ' || e.due_text || ' and is overdue; it is escalated to the "'
            || e.escalated_to || '" role.',
        '{Priority.HIGH}', e.payload
    FROM events e WHERE e.escalated_to IS NOT NULL""",
]


def breach_statement(*, tenant_ids, now: datetime, actor_id, context) -> tuple[str, dict]:
    params = _params(now)
    audit = insert_select(
        AuditLog,
        {
            "tenant_id": "x.tenant_id",
            "action": "x.action",
            "actor_id": params.add(actor_id, "uuid"),
            "resource_type": params.add(WorkflowStageApproval._meta.model_name, "varchar"),
            "resource_id": "x.approval_id::text",
            "contract_id": "x.contract_id",
            "changes": "x.changes",
            "ip_address": params.add(context.ip_address if context else None, "inet"),
            "user_agent": params.add(context.user_agent if context else "", "varchar"),
            "request_id": params.add(context.request_id if context else "", "varchar"),
        },
        f"""(
            SELECT e.tenant_id, '{BREACHED}' AS action, e.approval_id, e.contract_id,
                jsonb_build_object(
                    'breach', jsonb_build_array(NULL, e.id),
                    'contract', jsonb_build_array(NULL, e.contract_id),
                    'stage_name', jsonb_build_array(NULL, e.stage_name),
                    'due_at', jsonb_build_array(NULL, e.due_at),
                    'breached_at', jsonb_build_array(NULL, %(now)s::timestamptz)) AS changes,
                e.due_at, 0 AS step
            FROM events e
            UNION ALL
            SELECT e.tenant_id, '{ESCALATED}', e.approval_id, e.contract_id,
                jsonb_build_object(
                    'breach', jsonb_build_array(NULL, e.id),
                    'escalated_to', jsonb_build_array(NULL, e.escalated_to)),
                e.due_at, 1
            FROM events e WHERE e.escalated_to IS NOT NULL
        ) x""",
        params,
        now=WRITTEN_AT,
        # As they happened: approvals in the order they fell due, each one's breach before its
        # escalation. `seq` follows this order (its default is evaluated per row as inserted).
        order_by="x.due_at, x.approval_id, x.step",
    )
    notifications = _notification_ctes(
        (BREACHED, ESCALATED),
        BREACH_MESSAGES,
        [_approver_recipients("breached_event"), _escalation_recipients("escalated_event")],
        params,
    )
    sql = f"""
    WITH candidates AS MATERIALIZED ({_breach_candidates(tenant_ids, params)}),
    new_breaches AS (
        INSERT INTO {BREACH} AS b
            (id, tenant_id, approval_id, contract_id, stage_name, due_at, breached_at,
             escalated_to, escalated_at)
        SELECT gen_random_uuid(), c.tenant_id, c.id, c.contract_id, s.stage_name, c.due_at,
               %(now)s, r.escalate_to_role,
               CASE WHEN r.escalate_to_role IS NOT NULL THEN %(now)s::timestamptz END
        FROM candidates c
        JOIN {STAGE} s ON s.id = c.stage_id
        LEFT JOIN {RULE} r
          ON r.id = s.sla_rule_id AND r.is_active AND r.escalation_enabled
        ORDER BY c.id
        ON CONFLICT (approval_id) DO NOTHING
        RETURNING b.id, b.tenant_id, b.approval_id, b.contract_id, b.stage_name, b.due_at,
                  b.escalated_to
    ),
    marked AS (
        UPDATE {APPROVAL} a SET overdue_at = %(now)s, metadata = {_sla_metadata(True)}
        WHERE a.id = ANY(ARRAY(SELECT b.approval_id FROM new_breaches b))
          AND a.status = '{ApprovalStatus.PENDING}'
        RETURNING 1
    ),
    events AS MATERIALIZED (
        SELECT b.*, c.role, c.assigned_to_id, k.title AS contract_title,
               k.created_by_id AS contract_creator, {_due_text("b")},
               gen_random_uuid() AS breached_event,
               CASE WHEN b.escalated_to IS NOT NULL THEN gen_random_uuid() END AS escalated_event,
               jsonb_build_object(
                   'breach_id', b.id, 'approval_id', b.approval_id,
                   'contract_id', b.contract_id, 'contract_title', k.title,
                   'instance_id', c.instance_id, 'stage_name', b.stage_name,
                   'due_at', b.due_at, 'breached_at', %(now)s::timestamptz,
                   'escalated_to', b.escalated_to
               ) AS payload
        FROM new_breaches b
        JOIN candidates c ON c.id = b.approval_id
        JOIN {CONTRACT} k ON k.id = b.contract_id
    ),
    audited AS ({audit} RETURNING 1),
    {notifications}
    SELECT kind, tenant_id, count(*) FROM (
        SELECT 'checked' AS kind, tenant_id FROM candidates
        UNION ALL SELECT 'breached', tenant_id FROM new_breaches
        UNION ALL SELECT 'escalated', tenant_id FROM new_breaches WHERE escalated_to IS NOT NULL
    ) found
    GROUP BY kind, tenant_id
    """
    return sql, params


# --- 2. reminders ------------------------------------------------------------------------------


def _reminder_candidates(tenant_ids, params: Params) -> str:
    return f"""
        SELECT a.id, a.tenant_id, a.instance_id, a.contract_id, a.stage_id, a.role,
               a.assigned_to_id, a.due_at
        FROM {APPROVAL} a
        WHERE a.status = '{ApprovalStatus.PENDING}' AND a.reminded_at IS NULL
          AND a.overdue_at IS NULL AND a.remind_at <= %(now)s AND a.due_at >= %(now)s
          {_tenant_filter(tenant_ids, params)}
          AND {_NOT_WITH_REQUESTER}
    """


REMINDER_MESSAGES = [
    f"""SELECT e.tenant_id, e.event_id, '{REMINDER}',
        'SLA reminder: ' || {TITLE_SUFFIX},
        {ABOUT} || ' awaits your decision, due ' || e.due_text || '.',
        '{Priority.MEDIUM}', e.payload
    FROM events e""",
]


def reminder_statement(*, tenant_ids, now: datetime) -> tuple[str, dict]:
    params = _params(now)
    notifications = _notification_ctes(
        (REMINDER,), REMINDER_MESSAGES, [_approver_recipients("event_id")], params
    )
    sql = f"""
    WITH due AS MATERIALIZED (
        {_reminder_candidates(tenant_ids, params)}
        ORDER BY a.id
        FOR UPDATE OF a
    ),
    reminded AS (
        UPDATE {APPROVAL} a SET reminded_at = %(now)s, metadata = {_sla_metadata(False)}
        WHERE a.id = ANY(ARRAY(SELECT d.id FROM due d))
        RETURNING a.tenant_id
    ),
    events AS MATERIALIZED (
        SELECT a.id AS approval_id, a.tenant_id, a.role, a.assigned_to_id, a.due_at,
               s.stage_name, k.title AS contract_title, k.created_by_id AS contract_creator,
               {_due_text("a")}, gen_random_uuid() AS event_id,
               jsonb_build_object(
                   'approval_id', a.id, 'contract_id', a.contract_id,
                   'contract_title', k.title, 'instance_id', a.instance_id,
                   'stage_name', s.stage_name, 'due_at', a.due_at
               ) AS payload
        FROM due a
        JOIN {STAGE} s ON s.id = a.stage_id
        JOIN {CONTRACT} k ON k.id = a.contract_id
    ),
    {notifications}
    SELECT 'reminded', tenant_id, count(*) FROM reminded GROUP BY tenant_id
    """
    return sql, params


# --- dry run -----------------------------------------------------------------------------------


def dry_run_statement(*, tenant_ids, now: datetime) -> tuple[str, dict]:
    """What a run would do now, writing nothing: one SELECT."""
    params = _params(now)
    sql = f"""
    WITH candidates AS MATERIALIZED ({_breach_candidates(tenant_ids, params)}),
    fresh AS (
        SELECT c.tenant_id, r.id IS NOT NULL AS escalates
        FROM candidates c
        JOIN {STAGE} s ON s.id = c.stage_id
        LEFT JOIN {RULE} r
          ON r.id = s.sla_rule_id AND r.is_active AND r.escalation_enabled
        WHERE NOT EXISTS (
            SELECT 1 FROM {BREACH} b WHERE b.approval_id = c.id
        )
    )
    SELECT kind, tenant_id, count(*) FROM (
        SELECT 'checked' AS kind, tenant_id FROM candidates
        UNION ALL SELECT 'breached', tenant_id FROM fresh
        UNION ALL SELECT 'escalated', tenant_id FROM fresh WHERE escalates
        UNION ALL SELECT 'reminded', tenant_id FROM ({_reminder_candidates(tenant_ids, params)}) x
    ) found
    GROUP BY kind, tenant_id
    """
    return sql, params


# --- workload, for splitting a run across sessions ---------------------------------------------


def workload_statement(*, now: datetime) -> tuple[str, dict]:
    """``(tenant_id, work)`` for the tenants with breach or reminder candidates now: one unit
    per candidate, one more per breach that escalates (its notifications about double)."""
    params = _params(now)
    sql = f"""
    SELECT c.tenant_id, count(*) + count(r.id) FROM ({_breach_candidates(None, params)}) c
    JOIN {STAGE} s ON s.id = c.stage_id
    LEFT JOIN {RULE} r ON r.id = s.sla_rule_id AND r.is_active AND r.escalation_enabled
    GROUP BY c.tenant_id
    UNION ALL
    SELECT tenant_id, count(*) FROM ({_reminder_candidates(None, params)}) reminders
    GROUP BY tenant_id
    """
    return sql, params


def balanced_groups(workload: list[tuple], jobs: int) -> list[list]:
    """Tenants split into at most ``jobs`` groups of similar work (largest first, each to the
    least loaded group); a tenant is never split, so groups never touch the same rows."""
    per_tenant: dict = {}
    for tenant_id, count in workload:
        per_tenant[tenant_id] = per_tenant.get(tenant_id, 0) + count
    groups: list[tuple[int, list]] = [(0, []) for _ in range(max(1, jobs))]
    for tenant_id, count in sorted(per_tenant.items(), key=lambda item: (-item[1], str(item[0]))):
        load, members = min(groups, key=lambda group: group[0])
        groups.remove((load, members))
        groups.append((load + count, [*members, tenant_id]))
    return [members for _, members in groups if members]
