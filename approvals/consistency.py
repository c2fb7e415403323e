"""Read-only consistency checks of workflow state (``manage.py check_consistency``).

Each check is one set-based SQL statement stating, as its ``WHERE``, the negation of something
the orchestrator's transitions guarantee (``approvals/orchestrator.py``), so the database finds
the violations and only they reach Python, whatever the number of instances. A statement sees one
snapshot, so a live system can be checked: a decision committing meanwhile cannot make a
half-seen state look like a violation.

The invariants:

* An open instance (``active``, or ``changes_requested`` while it waits for its requester) has
  an open stage at its current sequence; earlier stages are settled (approved, skipped, or
  rejected when optional), later ones ``waiting``, or still settled when a reset kept their
  decisions (their own ``reset_on_change`` did not fire). A finished instance has no open stage,
  no current sequence and a ``completed_at``.
* Every pending stage of an open instance has exactly one live row (any status but the retired
  ``delegated``, whose slot went to a successor, and ``superseded``, replaced by a reset) per
  entry of its ``approvers``, none of them ``skipped`` or ``cancelled``, and its decisions do not
  already settle it (``all``: every entry approved or one rejection; ``any``: one decision;
  ``quorum``: ``min_approvals`` approvals, or too few pending rows left to reach it).
* No ``pending`` row outside a pending stage of an open instance. A stage that has not opened
  holds no row, except, after a reset, its retired rows and the decisions its policy kept. A
  ``delegated`` row has exactly one successor (same stage and approver).
* A contract's status follows its newest instance (active: ``in_review``, changes_requested,
  completed: ``approved``, rejected, cancelled; none: ``draft``; ``draft`` also after a
  completed or cancelled one when an edit since found no workflow to match), and it has at most
  one open instance.
* An ``approved`` contract's completed workflow has no approval, at a required stage, decided on
  an older revision when that stage's ``reset_on_change`` fires on the fields the revisions
  since then changed (``any``: any change; ``never``: none; a list: one of its fields).
* With ``distinct_approvers`` nobody decided (approved or rejected, live rows) two rows of one
  instance.
* An instance, its contract and definition, its stages and their approval rows share one tenant,
  and an approval row's instance and contract are its stage's.
"""

import uuid
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Model

from approvals.models import WorkflowInstance, WorkflowStage, WorkflowStageApproval
from contracts.models import Contract, ContractRevision
from core.sql import sql
from workflows.models import WorkflowDefinition


@dataclass(frozen=True)
class Violation:
    code: str
    tenant_id: uuid.UUID
    contract_id: uuid.UUID | None
    instance_id: uuid.UUID | None
    detail: str


@dataclass
class ConsistencyReport:
    contracts: int = 0
    instances: int = 0
    active_instances: int = 0
    violations: list[Violation] = field(default_factory=list)


# Raw SQL: the ORM cannot express these checks (CTEs, FULL JOIN, LATERAL unnest), and each must
# be one statement to see one snapshot. Names come from the models (``core.sql``); in a template,
# ``{{fragment}}`` is one of the shared conditions below, filled in after the names.
_TABLES = {
    "i": WorkflowInstance,
    "s": WorkflowStage,
    "a": WorkflowStageApproval,
    "c": Contract,
    "r": ContractRevision,
    "df": WorkflowDefinition,
}


def _in_scope(alias: str, model: type[Model]) -> str:
    """The tenant filter: ``%(tenant)s`` NULL checks every tenant (folded away by the planner)."""
    tenant = f"{{{alias}.tenant}}"
    return sql(f"(%(tenant)s::uuid IS NULL OR {tenant} = %(tenant)s::uuid)", **{alias: model})


_FRAGMENTS = {
    # A stage that no longer needs decisions. An optional stage's rejection is recorded and the
    # workflow goes on; a required one's rejects the workflow.
    "settled": sql(
        """({s.status} IN ('approved', 'skipped')
            OR ({s.status} = 'rejected' AND NOT {s.is_required}))""",
        s=WorkflowStage,
    ),
    # The instance is running: its current stage takes decisions, or will once resubmitted.
    "open": sql("{i.status} IN ('active', 'changes_requested')", i=WorkflowInstance),
    # Rows that no longer take part in their stage: handed on (delegated) or replaced by a reset.
    "retired": "('delegated', 'superseded')",
    # A reset re-opened some of the instance's stages: it superseded at least one decision.
    "was_reset": sql(
        """EXISTS (SELECT 1 FROM {x}
                        WHERE {x.instance} = {i.pk} AND {x.status} = 'superseded')""",
        x=WorkflowStageApproval,
        i=WorkflowInstance,
    ),
    **{f"scope_{alias}": _in_scope(alias, model) for alias, model in _TABLES.items()},
    **{f"scope_{alias}": _in_scope(alias, WorkflowStageApproval) for alias in "dn"},
}


def _statement(template: str, **tables: type[Model]) -> str:
    """``template``'s names filled in from ``_TABLES`` (and ``tables``), then its fragments."""
    return sql(template, **_TABLES, **tables).format(**_FRAGMENTS)


# Every check returns (code, tenant_id, contract_id, instance_id, detail).
_CHECK_SQL = (
    # Instances: an open one has an open stage at its current sequence; a finished one is closed.
    _statement(
        """
    SELECT CASE WHEN {{open}} THEN 'current_stage_not_open'
                ELSE 'finished_instance_not_closed' END,
           {i.tenant}, {i.contract}, {i.pk},
           format('workflow is %%s at sequence %%s, completed_at %%s',
                  {i.status}, coalesce({i.current_sequence}::text, 'none'),
                  coalesce({i.completed_at}::text, 'none'))
      FROM {i}
     WHERE {{scope_i}}
       AND CASE WHEN {{open}} THEN NOT EXISTS (
                     SELECT 1 FROM {s}
                      WHERE {s.instance} = {i.pk} AND {s.sequence} = {i.current_sequence}
                        AND {s.status} = 'pending')
                ELSE {i.current_sequence} IS NOT NULL OR {i.completed_at} IS NULL END
    """
    ),
    # Stages: their status fits their place relative to the instance's current sequence. A
    # reset leaves a later stage whose own policy did not fire settled.
    _statement(
        """
    SELECT 'stage_out_of_order', {i.tenant}, {i.contract}, {i.pk},
           format('stage "%%s" (sequence %%s, %%s) is %%s; the workflow is %%s at sequence %%s',
                  {s.stage_name}, {s.sequence},
                  CASE WHEN {s.is_required} THEN 'required' ELSE 'optional' END,
                  {s.status}, {i.status}, coalesce({i.current_sequence}::text, 'none'))
      FROM {s} JOIN {i} ON {i.pk} = {s.instance}
     WHERE {{scope_i}}
       AND NOT CASE
           WHEN {{open}} AND {s.sequence} < {i.current_sequence} THEN {{settled}}
           WHEN {{open}} AND {s.sequence} = {i.current_sequence}
                THEN {s.status} = 'pending' OR {{settled}}
           WHEN {{open}} THEN {s.status} = 'waiting' OR ({{settled}} AND {{was_reset}})
           WHEN {i.status} = 'completed' THEN {{settled}}
           ELSE {s.status} IN ('approved', 'rejected', 'skipped', 'cancelled') END
    """
    ),
    # Approval rows in the wrong place: pending outside an open stage, or in an unopened stage
    # (where only a reset leaves rows: retired ones and decisions kept by the stage's policy),
    # or closed (skipped/cancelled) while their stage is still open.
    _statement(
        """
    SELECT CASE WHEN {s.status} = 'waiting' THEN 'approval_in_unopened_stage'
                WHEN {a.status} = 'pending' AND NOT {{open}}
                     THEN 'pending_approval_in_finished_workflow'
                WHEN {a.status} = 'pending' THEN 'pending_approval_in_settled_stage'
                ELSE 'closed_approval_in_open_stage' END,
           {a.tenant}, {i.contract}, {i.pk},
           format('approval %%s (%%s) is %%s; stage "%%s" is %%s, the workflow %%s',
                  {a.pk}, {a.approver}, {a.status}, {s.stage_name}, {s.status}, {i.status})
      FROM {a}
      JOIN {s} ON {s.pk} = {a.stage}
      JOIN {i} ON {i.pk} = {a.instance}
     WHERE {{scope_a}}
       AND (({s.status} = 'waiting'
             AND ({a.status} IN ('pending', 'skipped', 'cancelled') OR NOT {{was_reset}}))
            OR ({a.status} = 'pending' AND (NOT {{open}} OR {s.status} <> 'pending'))
            OR ({a.status} IN ('skipped', 'cancelled') AND {s.status} = 'pending' AND {{open}}))
    """
    ),
    # Open stages: one live row per approver entry, and not already settled by its decisions.
    _statement(
        """
    WITH open_stages (id, tenant_id, contract_id, instance_id, stage_name, approvers, needed,
                      approval_type) AS (
        SELECT {s.pk}, {s.tenant}, {i.contract}, {s.instance}, {s.stage_name}, {s.approvers},
               CASE {s.approval_type} WHEN 'any' THEN 1
                                      WHEN 'quorum' THEN coalesce({s.min_approvals}, 1)
                                      ELSE cardinality({s.approvers}) END,
               {s.approval_type}
          FROM {s} JOIN {i} ON {i.pk} = {s.instance}
         WHERE {{open}} AND {s.status} = 'pending' AND {{scope_i}}
    ), slots AS (
        SELECT o.id AS stage_id, entry.approver, count(*) AS wanted
          FROM open_stages o CROSS JOIN LATERAL unnest(o.approvers) AS entry(approver)
         GROUP BY 1, 2
    ), held (stage_id, approver, live, pending, approved, rejected) AS (
        SELECT {a.stage}, {a.approver},
               count(*) FILTER (WHERE {a.status} NOT IN {{retired}}),
               count(*) FILTER (WHERE {a.status} = 'pending'),
               count(*) FILTER (WHERE {a.status} = 'approved'),
               count(*) FILTER (WHERE {a.status} = 'rejected')
          FROM {a} JOIN open_stages o ON o.id = {a.stage}
         GROUP BY 1, 2
    ), decided AS (
        SELECT o.*, coalesce(sum(h.approved), 0) AS approved,
               coalesce(sum(h.rejected), 0) AS rejected, coalesce(sum(h.pending), 0) AS pending
          FROM open_stages o LEFT JOIN held h ON h.stage_id = o.id
         GROUP BY o.id, o.tenant_id, o.contract_id, o.instance_id, o.stage_name, o.approvers,
                  o.needed, o.approval_type
    )
    SELECT CASE WHEN coalesce(h.live, 0) < coalesce(w.wanted, 0) THEN 'missing_approval'
                ELSE 'duplicate_approval' END,
           o.tenant_id, o.contract_id, o.instance_id,
           format('stage "%%s": approver %%s has %%s live row(s) (%%s pending) for %%s slot(s)',
                  o.stage_name, coalesce(w.approver, h.approver), coalesce(h.live, 0),
                  coalesce(h.pending, 0), coalesce(w.wanted, 0))
      FROM slots w
      FULL JOIN held h ON h.stage_id = w.stage_id AND h.approver = w.approver
      JOIN open_stages o ON o.id = coalesce(w.stage_id, h.stage_id)
     WHERE coalesce(h.live, 0) <> coalesce(w.wanted, 0)
    UNION ALL
    SELECT 'stage_should_have_settled', d.tenant_id, d.contract_id, d.instance_id,
           format('stage "%%s" (%%s) is pending with %%s approved, %%s rejected, %%s pending; '
                  'it needs %%s approvals', d.stage_name, d.approval_type, d.approved,
                  d.rejected, d.pending, d.needed)
      FROM decided d
     WHERE d.approved >= d.needed
        OR (d.rejected > 0
            AND (d.approval_type <> 'quorum' OR d.approved + d.pending < d.needed))
    """
    ),
    # Delegation: a delegated row has exactly one successor, in its stage, for its approver entry.
    _statement(
        """
    SELECT 'delegation_broken', {d.tenant}, {d.contract}, {d.instance},
           format('approval %%s (%%s) is delegated but has %%s successor row(s)',
                  {d.pk}, {d.approver}, count({n.pk}))
      FROM {d}
      LEFT JOIN {n}
        ON {n.delegated_from} = {d.pk} AND {n.stage} = {d.stage} AND {n.approver} = {d.approver}
     WHERE {d.status} = 'delegated' AND {{scope_d}}
     GROUP BY {d.pk}
    HAVING count({n.pk}) <> 1
    UNION ALL
    SELECT 'delegation_broken', {n.tenant}, {n.contract}, {n.instance},
           format('approval %%s names %%s as delegated from, which is %%s',
                  {n.pk}, {d.pk}, {d.status})
      FROM {n} JOIN {d} ON {d.pk} = {n.delegated_from}
     WHERE {d.status} <> 'delegated' AND {{scope_n}}
    """,
        d=WorkflowStageApproval,
        n=WorkflowStageApproval,
    ),
    # Contracts: the status follows the newest instance; at most one open instance. An edit
    # that re-routes a contract under review, or amends an approved one, to no match leaves a
    # draft after the newest instance: a revision newer than that instance's start.
    _statement(
        """
    WITH scoped (id, tenant_id, status) AS (
        SELECT {c.pk}, {c.tenant}, {c.status} FROM {c} WHERE {{scope_c}}
    ), newest (contract_id, id, status, started_at) AS (
        SELECT DISTINCT ON ({i.contract}) {i.contract}, {i.pk}, {i.status}, {i.started_at}
          FROM {i} JOIN scoped k ON k.id = {i.contract}
         ORDER BY {i.contract}, {i.started_at} DESC, {i.pk} DESC
    ), running (contract_id, n) AS (
        SELECT {i.contract}, count(*)
          FROM {i} JOIN scoped k ON k.id = {i.contract}
         WHERE {{open}}
         GROUP BY 1
    )
    SELECT 'contract_status_mismatch', k.tenant_id, k.id, n.id,
           format('contract is %%s; %%s', k.status,
                  CASE WHEN n.id IS NULL THEN 'it has no workflow'
                       ELSE format('its newest workflow is %%s, %%s open', n.status,
                                   coalesce(o.n, 0)) END)
      FROM scoped k
      LEFT JOIN newest n ON n.contract_id = k.id
      LEFT JOIN running o ON o.contract_id = k.id
     WHERE coalesce(o.n, 0) > 1
        OR (k.status <> CASE n.status WHEN 'active' THEN 'in_review'
                                      WHEN 'changes_requested' THEN 'changes_requested'
                                      WHEN 'completed' THEN 'approved'
                                      WHEN 'rejected' THEN 'rejected'
                                      WHEN 'cancelled' THEN 'cancelled'
                                      ELSE 'draft' END
            AND NOT (k.status = 'draft' AND n.status IN ('completed', 'cancelled')
                     AND EXISTS (SELECT 1 FROM {r}
                                  WHERE {r.contract} = k.id AND {r.created_at} > n.started_at)))
    """
    ),
    # Approved on stale content: a required stage of the approved contract's completed workflow
    # holds an approval decided on an older revision although that stage's reset policy fires
    # on the fields changed since (every revision after the decision's, up to the current one).
    # A decision from before revisions were recorded (no revision) counts as made on the first.
    _statement(
        """
    WITH approved (id, tenant_id, revision) AS (
        SELECT {c.pk}, {c.tenant}, {c.revision} FROM {c}
         WHERE {c.status} = 'approved' AND {{scope_c}}
    ), newest (contract_id, id, status) AS (
        SELECT DISTINCT ON ({i.contract}) {i.contract}, {i.pk}, {i.status}
          FROM {i} JOIN approved k ON k.id = {i.contract}
         ORDER BY {i.contract}, {i.started_at} DESC, {i.pk} DESC
    ), older AS (
        SELECT k.tenant_id, k.id AS contract_id, n.id AS instance_id, k.revision AS current,
               {a.pk} AS approval_id, coalesce({a.revision}, 1) AS decided_on,
               {s.stage_name} AS stage_name, {s.reset_on_change} AS policy,
               ARRAY(SELECT DISTINCT f.name
                       FROM {r} CROSS JOIN LATERAL unnest({r.changed_fields}) AS f(name)
                      WHERE {r.contract} = k.id AND {r.number} > coalesce({a.revision}, 1)
                        AND {r.number} <= k.revision
                      ORDER BY f.name) AS changed
          FROM approved k
          JOIN newest n ON n.contract_id = k.id AND n.status = 'completed'
          JOIN {s} ON {s.instance} = n.id AND {s.is_required}
          JOIN {a} ON {a.stage} = {s.pk} AND {a.status} = 'approved'
         WHERE coalesce({a.revision}, 1) < k.revision
    )
    SELECT 'approval_on_stale_revision', o.tenant_id, o.contract_id, o.instance_id,
           format('approval %%s of stage "%%s" was decided on revision %%s; the contract is '
                  'approved at revision %%s, and %%s changed since (reset_on_change %%s)',
                  o.approval_id, o.stage_name, o.decided_on, o.current,
                  array_to_string(o.changed, ', '), o.policy::text)
      FROM older o
     WHERE cardinality(o.changed) > 0
       AND CASE WHEN jsonb_typeof(o.policy) = 'array'
                THEN EXISTS (SELECT 1 FROM jsonb_array_elements_text(o.policy) AS p(name)
                              WHERE p.name = ANY (o.changed))
                ELSE o.policy <> '"never"'::jsonb END
    """
    ),
    # Distinct approvers: nobody holds two live decisions of one instance that requires them.
    _statement(
        """
    SELECT 'approver_decided_twice', {i.tenant}, {i.contract}, {i.pk},
           format('user %%s decided %%s approvals of the workflow: %%s', {a.decided_by},
                  count(*), string_agg(format('"%%s" %%s', {s.stage_name}, {a.status}), ', '
                                       ORDER BY {s.sequence}, {s.stage_name}, {a.decided_at}))
      FROM {a}
      JOIN {i} ON {i.pk} = {a.instance}
      JOIN {s} ON {s.pk} = {a.stage}
     WHERE {i.distinct_approvers} AND {a.status} IN ('approved', 'rejected')
       AND {a.decided_by} IS NOT NULL AND {{scope_i}}
     GROUP BY {i.tenant}, {i.contract}, {i.pk}, {a.decided_by}
    HAVING count(*) > 1
    """
    ),
    # Ownership: one tenant per workflow; an approval row's instance and contract are its stage's.
    _statement(
        """
    SELECT 'tenant_mismatch', {i.tenant}, {i.contract}, {i.pk},
           format('workflow of tenant %%s on a contract of tenant %%s (definition: tenant %%s)',
                  {i.tenant}, {c.tenant}, {df.tenant})
      FROM {i}
      JOIN {c} ON {c.pk} = {i.contract}
      JOIN {df} ON {df.pk} = {i.definition}
     WHERE ({i.tenant} <> {c.tenant} OR {i.tenant} <> {df.tenant})
       AND ({{scope_i}} OR {{scope_c}} OR {{scope_df}})
    UNION ALL
    SELECT 'tenant_mismatch', {i.tenant}, {i.contract}, {i.pk},
           format('stage "%%s" of tenant %%s in a workflow of tenant %%s',
                  {s.stage_name}, {s.tenant}, {i.tenant})
      FROM {s} JOIN {i} ON {i.pk} = {s.instance}
     WHERE {s.tenant} <> {i.tenant} AND ({{scope_s}} OR {{scope_i}})
    UNION ALL
    SELECT CASE WHEN {a.tenant} <> {s.tenant} OR {a.tenant} <> {i.tenant}
                THEN 'tenant_mismatch' ELSE 'approval_link_mismatch' END,
           {i.tenant}, {i.contract}, {i.pk},
           format('approval %%s of tenant %%s (instance %%s, contract %%s) is in stage "%%s" '
                  'of tenant %%s (instance %%s, contract %%s)', {a.pk}, {a.tenant},
                  {a.instance}, {a.contract}, {s.stage_name}, {s.tenant}, {s.instance},
                  {i.contract})
      FROM {a}
      JOIN {s} ON {s.pk} = {a.stage}
      JOIN {i} ON {i.pk} = {s.instance}
     WHERE ({a.tenant} <> {s.tenant} OR {a.tenant} <> {i.tenant}
            OR {a.instance} <> {s.instance} OR {a.contract} <> {i.contract})
       AND ({{scope_a}} OR {{scope_i}})
    """
    ),
)

_COUNTS_SQL = _statement(
    """
SELECT (SELECT count(*) FROM {c} WHERE {{scope_c}}),
       count(*), count(*) FILTER (WHERE {i.status} = 'active')
  FROM {i} WHERE {{scope_i}}
"""
)


def consistency_check(*, tenant_id: uuid.UUID | None = None) -> ConsistencyReport:
    """Every violation of the workflow invariants, for one tenant or all; writes nothing."""
    params = {"tenant": str(tenant_id) if tenant_id else None}
    report = ConsistencyReport()
    with connection.cursor() as cursor:
        cursor.execute(_COUNTS_SQL, params)
        report.contracts, report.instances, report.active_instances = cursor.fetchone()
        for sql in _CHECK_SQL:
            cursor.execute(sql, params)
            report.violations.extend(Violation(*row) for row in cursor.fetchall())
    report.violations.sort(
        key=lambda v: (str(v.tenant_id), str(v.contract_id), str(v.instance_id), v.code, v.detail)
    )
    return report
