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

from approvals.models import WorkflowInstance, WorkflowStage, WorkflowStageApproval
from contracts.models import Contract, ContractRevision
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


def _in_scope(alias: str) -> str:
    """The tenant filter: ``%(tenant)s`` NULL checks every tenant (folded away by the planner)."""
    return f"(%(tenant)s::uuid IS NULL OR {alias}.tenant_id = %(tenant)s::uuid)"


# A stage that no longer needs decisions. An optional stage's rejection is recorded and the
# workflow goes on; a required one's rejects the workflow.
_SETTLED = "(s.status IN ('approved', 'skipped') OR (s.status = 'rejected' AND NOT s.is_required))"

# The instance is running: its current stage takes decisions, or will once resubmitted.
_OPEN = "i.status IN ('active', 'changes_requested')"

# Rows that no longer take part in their stage: handed on (delegated) or replaced by a reset.
_RETIRED = "('delegated', 'superseded')"

# A reset re-opened some of the instance's stages: it superseded at least one decision.
_WAS_RESET = """EXISTS (SELECT 1 FROM {approval} x
                        WHERE x.instance_id = i.id AND x.status = 'superseded')"""

# Every check returns (code, tenant_id, contract_id, instance_id, detail).
_CHECKS = (
    # Instances: an open one has an open stage at its current sequence; a finished one is closed.
    """
    SELECT CASE WHEN {open} THEN 'current_stage_not_open'
                ELSE 'finished_instance_not_closed' END,
           i.tenant_id, i.contract_id, i.id,
           format('workflow is %%s at sequence %%s, completed_at %%s',
                  i.status, coalesce(i.current_sequence::text, 'none'),
                  coalesce(i.completed_at::text, 'none'))
      FROM {instance} i
     WHERE {scope_i}
       AND CASE WHEN {open} THEN NOT EXISTS (
                     SELECT 1 FROM {stage} s
                      WHERE s.instance_id = i.id AND s.sequence = i.current_sequence
                        AND s.status = 'pending')
                ELSE i.current_sequence IS NOT NULL OR i.completed_at IS NULL END
    """,
    # Stages: their status fits their place relative to the instance's current sequence. A
    # reset leaves a later stage whose own policy did not fire settled.
    """
    SELECT 'stage_out_of_order', i.tenant_id, i.contract_id, i.id,
           format('stage "%%s" (sequence %%s, %%s) is %%s; the workflow is %%s at sequence %%s',
                  s.stage_name, s.sequence,
                  CASE WHEN s.is_required THEN 'required' ELSE 'optional' END,
                  s.status, i.status, coalesce(i.current_sequence::text, 'none'))
      FROM {stage} s JOIN {instance} i ON i.id = s.instance_id
     WHERE {scope_i}
       AND NOT CASE
           WHEN {open} AND s.sequence < i.current_sequence THEN {settled}
           WHEN {open} AND s.sequence = i.current_sequence
                THEN s.status = 'pending' OR {settled}
           WHEN {open} THEN s.status = 'waiting' OR ({settled} AND {was_reset})
           WHEN i.status = 'completed' THEN {settled}
           ELSE s.status IN ('approved', 'rejected', 'skipped', 'cancelled') END
    """,
    # Approval rows in the wrong place: pending outside an open stage, or in an unopened stage
    # (where only a reset leaves rows: retired ones and decisions kept by the stage's policy),
    # or closed (skipped/cancelled) while their stage is still open.
    """
    SELECT CASE WHEN s.status = 'waiting' THEN 'approval_in_unopened_stage'
                WHEN a.status = 'pending' AND NOT {open}
                     THEN 'pending_approval_in_finished_workflow'
                WHEN a.status = 'pending' THEN 'pending_approval_in_settled_stage'
                ELSE 'closed_approval_in_open_stage' END,
           a.tenant_id, i.contract_id, i.id,
           format('approval %%s (%%s) is %%s; stage "%%s" is %%s, the workflow %%s',
                  a.id, a.approver, a.status, s.stage_name, s.status, i.status)
      FROM {approval} a
      JOIN {stage} s ON s.id = a.stage_id
      JOIN {instance} i ON i.id = a.instance_id
     WHERE {scope_a}
       AND ((s.status = 'waiting'
             AND (a.status IN ('pending', 'skipped', 'cancelled') OR NOT {was_reset}))
            OR (a.status = 'pending' AND (NOT {open} OR s.status <> 'pending'))
            OR (a.status IN ('skipped', 'cancelled') AND s.status = 'pending' AND {open}))
    """,
    # Open stages: one live row per approver entry, and not already settled by its decisions.
    """
    WITH open_stages AS (
        SELECT s.id, s.tenant_id, i.contract_id, s.instance_id, s.stage_name, s.approvers,
               CASE s.approval_type WHEN 'any' THEN 1
                                    WHEN 'quorum' THEN coalesce(s.min_approvals, 1)
                                    ELSE cardinality(s.approvers) END AS needed,
               s.approval_type
          FROM {stage} s JOIN {instance} i ON i.id = s.instance_id
         WHERE {open} AND s.status = 'pending' AND {scope_i}
    ), slots AS (
        SELECT o.id AS stage_id, entry.approver, count(*) AS wanted
          FROM open_stages o CROSS JOIN LATERAL unnest(o.approvers) AS entry(approver)
         GROUP BY 1, 2
    ), held AS (
        SELECT a.stage_id, a.approver,
               count(*) FILTER (WHERE a.status NOT IN {retired}) AS live,
               count(*) FILTER (WHERE a.status = 'pending') AS pending,
               count(*) FILTER (WHERE a.status = 'approved') AS approved,
               count(*) FILTER (WHERE a.status = 'rejected') AS rejected
          FROM {approval} a JOIN open_stages o ON o.id = a.stage_id
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
    """,
    # Delegation: a delegated row has exactly one successor, in its stage, for its approver entry.
    """
    SELECT 'delegation_broken', d.tenant_id, d.contract_id, d.instance_id,
           format('approval %%s (%%s) is delegated but has %%s successor row(s)',
                  d.id, d.approver, count(n.id))
      FROM {approval} d
      LEFT JOIN {approval} n
        ON n.delegated_from_id = d.id AND n.stage_id = d.stage_id AND n.approver = d.approver
     WHERE d.status = 'delegated' AND {scope_d}
     GROUP BY d.id
    HAVING count(n.id) <> 1
    UNION ALL
    SELECT 'delegation_broken', n.tenant_id, n.contract_id, n.instance_id,
           format('approval %%s names %%s as delegated from, which is %%s', n.id, d.id, d.status)
      FROM {approval} n JOIN {approval} d ON d.id = n.delegated_from_id
     WHERE d.status <> 'delegated' AND {scope_n}
    """,
    # Contracts: the status follows the newest instance; at most one open instance. An edit
    # that re-routes a contract under review, or amends an approved one, to no match leaves a
    # draft after the newest instance: a revision newer than that instance's start.
    """
    WITH scoped AS (
        SELECT c.id, c.tenant_id, c.status FROM {contract} c WHERE {scope_c}
    ), newest AS (
        SELECT DISTINCT ON (i.contract_id) i.contract_id, i.id, i.status, i.started_at
          FROM {instance} i JOIN scoped c ON c.id = i.contract_id
         ORDER BY i.contract_id, i.started_at DESC, i.id DESC
    ), active AS (
        SELECT i.contract_id, count(*) AS n
          FROM {instance} i JOIN scoped c ON c.id = i.contract_id
         WHERE {open}
         GROUP BY 1
    )
    SELECT 'contract_status_mismatch', c.tenant_id, c.id, n.id,
           format('contract is %%s; %%s', c.status,
                  CASE WHEN n.id IS NULL THEN 'it has no workflow'
                       ELSE format('its newest workflow is %%s, %%s open', n.status,
                                   coalesce(a.n, 0)) END)
      FROM scoped c
      LEFT JOIN newest n ON n.contract_id = c.id
      LEFT JOIN active a ON a.contract_id = c.id
     WHERE coalesce(a.n, 0) > 1
        OR (c.status <> CASE n.status WHEN 'active' THEN 'in_review'
                                      WHEN 'changes_requested' THEN 'changes_requested'
                                      WHEN 'completed' THEN 'approved'
                                      WHEN 'rejected' THEN 'rejected'
                                      WHEN 'cancelled' THEN 'cancelled'
                                      ELSE 'draft' END
            AND NOT (c.status = 'draft' AND n.status IN ('completed', 'cancelled')
                     AND EXISTS (SELECT 1 FROM {revision} r
                                  WHERE r.contract_id = c.id AND r.created_at > n.started_at)))
    """,
    # Approved on stale content: a required stage of the approved contract's completed workflow
    # holds an approval decided on an older revision although that stage's reset policy fires
    # on the fields changed since (every revision after the decision's, up to the current one).
    # A decision from before revisions were recorded (no revision) counts as made on the first.
    """
    WITH approved AS (
        SELECT c.id, c.tenant_id, c.revision FROM {contract} c
         WHERE c.status = 'approved' AND {scope_c}
    ), newest AS (
        SELECT DISTINCT ON (i.contract_id) i.contract_id, i.id, i.status
          FROM {instance} i JOIN approved c ON c.id = i.contract_id
         ORDER BY i.contract_id, i.started_at DESC, i.id DESC
    ), older AS (
        SELECT c.tenant_id, c.id AS contract_id, n.id AS instance_id, c.revision AS current,
               a.id AS approval_id, coalesce(a.revision, 1) AS decided_on, s.stage_name,
               s.reset_on_change AS policy,
               ARRAY(SELECT DISTINCT f.name
                       FROM {revision} r CROSS JOIN LATERAL unnest(r.changed_fields) AS f(name)
                      WHERE r.contract_id = c.id AND r.number > coalesce(a.revision, 1)
                        AND r.number <= c.revision
                      ORDER BY f.name) AS changed
          FROM approved c
          JOIN newest n ON n.contract_id = c.id AND n.status = 'completed'
          JOIN {stage} s ON s.instance_id = n.id AND s.is_required
          JOIN {approval} a ON a.stage_id = s.id AND a.status = 'approved'
         WHERE coalesce(a.revision, 1) < c.revision
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
    """,
    # Distinct approvers: nobody holds two live decisions of one instance that requires them.
    """
    SELECT 'approver_decided_twice', i.tenant_id, i.contract_id, i.id,
           format('user %%s decided %%s approvals of the workflow: %%s', a.decided_by_id,
                  count(*), string_agg(format('"%%s" %%s', s.stage_name, a.status), ', '
                                       ORDER BY s.sequence, s.stage_name, a.decided_at))
      FROM {approval} a
      JOIN {instance} i ON i.id = a.instance_id
      JOIN {stage} s ON s.id = a.stage_id
     WHERE i.distinct_approvers AND a.status IN ('approved', 'rejected')
       AND a.decided_by_id IS NOT NULL AND {scope_i}
     GROUP BY i.tenant_id, i.contract_id, i.id, a.decided_by_id
    HAVING count(*) > 1
    """,
    # Ownership: one tenant per workflow; an approval row's instance and contract are its stage's.
    """
    SELECT 'tenant_mismatch', i.tenant_id, i.contract_id, i.id,
           format('workflow of tenant %%s on a contract of tenant %%s (definition: tenant %%s)',
                  i.tenant_id, c.tenant_id, d.tenant_id)
      FROM {instance} i
      JOIN {contract} c ON c.id = i.contract_id
      JOIN {definition} d ON d.id = i.definition_id
     WHERE (i.tenant_id <> c.tenant_id OR i.tenant_id <> d.tenant_id)
       AND ({scope_i} OR {scope_c} OR {scope_d})
    UNION ALL
    SELECT 'tenant_mismatch', i.tenant_id, i.contract_id, i.id,
           format('stage "%%s" of tenant %%s in a workflow of tenant %%s',
                  s.stage_name, s.tenant_id, i.tenant_id)
      FROM {stage} s JOIN {instance} i ON i.id = s.instance_id
     WHERE s.tenant_id <> i.tenant_id AND ({scope_s} OR {scope_i})
    UNION ALL
    SELECT CASE WHEN a.tenant_id <> s.tenant_id OR a.tenant_id <> i.tenant_id
                THEN 'tenant_mismatch' ELSE 'approval_link_mismatch' END,
           i.tenant_id, i.contract_id, i.id,
           format('approval %%s of tenant %%s (instance %%s, contract %%s) is in stage "%%s" '
                  'of tenant %%s (instance %%s, contract %%s)', a.id, a.tenant_id,
                  a.instance_id, a.contract_id, s.stage_name, s.tenant_id, s.instance_id,
                  i.contract_id)
      FROM {approval} a
      JOIN {stage} s ON s.id = a.stage_id
      JOIN {instance} i ON i.id = s.instance_id
     WHERE (a.tenant_id <> s.tenant_id OR a.tenant_id <> i.tenant_id
            OR a.instance_id <> s.instance_id OR a.contract_id <> i.contract_id)
       AND ({scope_a} OR {scope_i})
    """,
)

_COUNTS = """
SELECT (SELECT count(*) FROM {contract} c WHERE {scope_c}),
       count(*), count(*) FILTER (WHERE i.status = 'active')
  FROM {instance} i WHERE {scope_i}
"""

# Table names and fixed fragments only: every value is a bound parameter (%(tenant)s).
_PARTS = {
    "instance": WorkflowInstance._meta.db_table,
    "stage": WorkflowStage._meta.db_table,
    "approval": WorkflowStageApproval._meta.db_table,
    "contract": Contract._meta.db_table,
    "definition": WorkflowDefinition._meta.db_table,
    "revision": ContractRevision._meta.db_table,
    "settled": _SETTLED,
    "open": _OPEN,
    "retired": _RETIRED,
    "was_reset": _WAS_RESET.format(approval=WorkflowStageApproval._meta.db_table),
    **{f"scope_{alias}": _in_scope(alias) for alias in "acdins"},
}
_CHECK_SQL = tuple(check.format(**_PARTS) for check in _CHECKS)
_COUNTS_SQL = _COUNTS.format(**_PARTS)


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
