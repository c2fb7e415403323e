"""The orchestrator: every state change of a workflow instance and its approvals.

Each public function is one transaction that first locks the contract row, the aggregate's
root: every writer of a contract's workflow (start, decide, delegate, request changes, resubmit,
cancel, and the contract services' edits and amendments) takes that lock before anything else,
so they are serialized in one order (no deadlock), nothing double-advances, no stage's
approvals are created twice, no decision is lost, and every decision reads the contract's
current revision, which it records. Every transition is checked against the state machine,
writes its audit rows in the same transaction and sends its domain signal.

Stage semantics (docs/api.md, "Running a workflow"):
- ``all``: every approver entry must approve; one rejection rejects the stage.
- ``any``: the first decision settles the stage; on approval the other pending rows are skipped.
- ``quorum``: ``min_approvals`` approvals complete it (the rest are skipped); it is rejected once
  the remaining pending rows can no longer reach the quorum.
- A rejected required stage rejects the workflow (remaining pending rows are cancelled); a
  rejected optional stage is recorded and the workflow goes on.
- Stages sharing a sequence run in parallel; the next sequence starts when all of them settled.

Approval integrity (docs/api.md, "Approval integrity"):
- With ``distinct_approvers`` a person decides at most one row of an instance.
- A change of the contract during review re-routes it (another definition now matches) or
  re-opens the stages whose ``reset_on_change`` policy fires: their decisions become
  ``superseded`` and fresh rows are assigned (``_reopen``).
- ``request_changes`` pauses the instance with the requester; ``workflow_resubmit`` resumes it,
  moving the waiting rows' due dates by the pause and re-opening the requesting stage.
"""

import functools
from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, models, transaction
from django.utils import timezone
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError

from approvals import signals
from approvals.models import (
    OPEN_INSTANCE_STATUSES,
    ApprovalStatus,
    InstanceStatus,
    StageStatus,
    WorkflowInstance,
    WorkflowStage,
    WorkflowStageApproval,
)
from approvals.selectors import sla_policy_cached, sla_policy_for
from approvals.sla.rules import SLAPlan, SLAPolicy
from approvals.stage_outcome import stage_outcome
from audit.services import audit_rows_statement
from config.exceptions import Conflict
from contracts.models import Contract, ContractRevision, ContractStatus
from contracts.permissions import require_contract_editor
from contracts.revisions import changed_fields
from core import pipeline
from core.sql import (
    Deferring,
    Prepared,
    joined,
    leading_models,
    model_from_row,
    one_to_many,
    sql,
)
from tenancy.approvers import held_roles_sql, resolve_stage_approvers
from tenancy.capabilities import WORKFLOWS_MANAGE
from tenancy.eligibility import eligible_approvers_sql
from tenancy.models import User
from tenancy.out_of_office import personal_assignees
from tenancy.permissions import has_capability
from workflows.engine import match_engine
from workflows.models import RESET_ANY, WorkflowDefinition, WorkflowDefinitionVersion
from workflows.stages import reset_fires

SETTLED_STAGE_STATUSES = (StageStatus.APPROVED, StageStatus.REJECTED, StageStatus.SKIPPED)
RESTARTABLE_CONTRACT_STATUSES = (
    ContractStatus.DRAFT,
    ContractStatus.REJECTED,
    ContractStatus.CANCELLED,
)
DECIDED_STATUSES = (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED)
# Rows that no longer take part in their stage: handed on, replaced, or closed with the instance.
RETIRED_STATUSES = (ApprovalStatus.DELEGATED, ApprovalStatus.SUPERSEDED, ApprovalStatus.CANCELLED)
_DEFERRED_CONTRACT_FIELDS = ("text", "clause_findings")


class ApprovalAction(models.TextChoices):
    """What an approver does with their pending approval (``approval_act``'s ``action``)."""

    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
    DELEGATE = "delegate", "Delegate"
    REQUEST_CHANGES = "request_changes", "Request changes"


class ResetReason(models.TextChoices):
    """Why decided rows stopped counting (``approvals_reset``'s ``reason``)."""

    CHANGED = "changed", "The contract changed"
    REROUTED = "rerouted", "The contract follows another workflow"


@dataclass(frozen=True)
class _Transition:
    """One transaction's change of an instance, the one argument of every helper below: what it
    acts on, who acts and when, and what it records (audit rows) and announces (signals).

    ``rows`` are all the instance's approval rows, each with its stage object from ``stages``;
    helpers change those objects and queue their writes (``core.pipeline``). Audit rows are
    built whole by ``record`` and written, never edited, by ``flush``: one INSERT, then every
    receiver under one savepoint (``approvals.signals.dispatch``), so a transition's cost does
    not grow with the number of things it records or announces.
    """

    instance: WorkflowInstance
    contract: Contract
    actor: User | None
    now: datetime
    stages: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    audit: list = field(default_factory=list)
    sends: list = field(default_factory=list)
    via: str = ""  # the channel a decision came through ("email_link"), recorded in its audit

    @classmethod
    def loaded(cls, instance, contract, actor) -> "_Transition":
        """A transition of ``instance`` with its stages and rows read (one query), for a change
        that is nobody's decision (a decision reads them with its instance)."""
        stages, rows = _stages_and_rows(instance, contract)
        return cls(instance, contract, actor, timezone.now(), stages, rows)

    def record(self, action: str, resource, **changes) -> None:
        if self.via:
            changes["via"] = (None, self.via)
        self.audit.append(
            {
                "action": action,
                "tenant": self.instance.tenant_id,
                "actor": self.actor,
                "resource": resource,
                "changes": {key: list(value) for key, value in changes.items()},
            }
        )

    def emit(self, signal, **kwargs) -> None:
        self.sends.append(
            (signal, WorkflowInstance, {"instance": self.instance, "actor": self.actor, **kwargs})
        )

    def emit_outcome(self) -> None:
        outcome_signal = {
            InstanceStatus.COMPLETED: signals.workflow_completed,
            InstanceStatus.REJECTED: signals.workflow_rejected,
            InstanceStatus.CANCELLED: signals.workflow_cancelled,
        }.get(self.instance.status)
        if outcome_signal is not None:
            self.emit(outcome_signal)

    def flush(self, *, extra_audit=()) -> None:
        audit = audit_rows_statement([*extra_audit, *self.audit])
        if audit is not None:
            pipeline.execute(*audit)
        signals.dispatch(self.sends)


def _atomic_transition(function):
    """``transaction.atomic`` with the transition's writes queued, the last of them sent with
    its COMMIT (``core.pipeline.atomic``)."""

    @functools.wraps(function)
    def atomic_transition(*args, **kwargs):
        with pipeline.atomic():
            return function(*args, **kwargs)

    return atomic_transition


# --- locks and permissions ---------------------------------------------------------------------


def _lock_contract(*, tenant, contract_id) -> Contract:
    """The contract row locked until commit (404 when it is not the tenant's): the lock every
    writer of the contract's workflow takes first."""
    contract = (
        Contract.objects.for_tenant(tenant)
        .select_for_update()
        .defer(*_DEFERRED_CONTRACT_FIELDS)
        .filter(pk=contract_id)
        .first()
    )
    if contract is None:
        raise NotFound()
    return contract


def _queue_contract_lock(*, tenant, contract_id) -> None:
    """``_lock_contract`` for the decision path, queued (``core.pipeline``): the read of the
    instance and its contract carries it, in the same round trip. They are two statements, so the
    read's snapshot is still taken once the lock is held; a contract that is not the tenant's
    locks nothing, and the read finds nothing (``_require_contract`` then answers 404).

    Raw SQL because this runs on every decision and compiling an ORM query for a lock cost
    more than the statement itself (bench/bench_process.py).
    """
    pipeline.execute(
        _LOCK_CONTRACT, {"contract": contract_id, "tenant": getattr(tenant, "pk", tenant)}
    )


_LOCK_CONTRACT = Prepared(
    sql(
        "SELECT 1 FROM {k} WHERE {k.pk} = %(contract)s AND {k.tenant} = %(tenant)s FOR UPDATE",
        k=Contract,
    )
)


def _require_contract(*, tenant, contract_id) -> None:
    """404 when the contract is not the tenant's."""
    if not Contract.objects.for_tenant(tenant).filter(pk=contract_id).exists():
        raise NotFound()


def _open_instance(contract: Contract) -> WorkflowInstance | None:
    instance = (
        WorkflowInstance.objects.filter(contract=contract, status__in=OPEN_INSTANCE_STATUSES)
        .order_by()
        .first()
    )
    if instance is not None:
        instance.contract = contract
    return instance


def _require_workflow_controller(contract: Contract, actor: User, what: str) -> None:
    """Starting and cancelling: the contract's creator or ``workflows.manage``."""
    if contract.created_by_id != actor.pk and not has_capability(actor, WORKFLOWS_MANAGE):
        raise PermissionDenied(
            f"Only the contract's creator or a holder of 'workflows.manage' may {what}."
        )


# --- start -----------------------------------------------------------------------------------


@_atomic_transition
def workflow_start(
    *, contract: Contract, started_by: User, definition: WorkflowDefinition | None = None
) -> WorkflowInstance:
    """Start ``definition`` (or the match engine's pick) on an existing contract.

    The creator or ``workflows.manage`` may start; naming a definition needs ``workflows.manage``
    (everyone else gets the match engine's pick, so nobody routes around the matched chain).
    400 when nothing matches, 409 when a workflow is open or the contract is not restartable.
    """
    contract = _lock_contract(tenant=contract.tenant_id, contract_id=contract.pk)
    _require_workflow_controller(contract, started_by, "start its workflow")
    if definition is not None and not has_capability(started_by, WORKFLOWS_MANAGE):
        raise PermissionDenied(
            "Naming a workflow definition requires the 'workflows.manage' capability; "
            "omit it to start the matched workflow."
        )
    if _open_instance(contract) is not None:
        raise Conflict("A workflow is already active on this contract.", code="workflow_active")
    if contract.status not in RESTARTABLE_CONTRACT_STATUSES:
        raise Conflict(
            f"A workflow cannot start on a contract that is '{contract.status}'.",
            code="contract_not_startable",
        )
    if definition is None:
        definition = match_engine.find_match(contract)
        if definition is None:
            raise ValidationError(
                {"workflow_definition": ["No active workflow definition matches this contract."]}
            )
    elif definition.tenant_id != contract.tenant_id:
        raise ValidationError({"workflow_definition": ["This workflow definition is not active."]})
    transition = _start_locked(contract, definition, started_by, timezone.now())
    transition.flush()
    return transition.instance


def _start_locked(contract, definition, started_by, now) -> _Transition:
    """Start ``definition`` on a locked, saved contract with no open instance (not flushed)."""
    version, held = _lock_current_version(definition, creator_id=contract.created_by_id, at=now)
    instance = _new_instance(contract, definition, version, started_by, now)
    transition = _Transition(
        instance, contract, started_by, now, stages=_new_stages(instance, version, held)
    )
    _record_start(transition, definition, version)
    assigned = _start_next_sequence(transition)
    try:
        with transaction.atomic():
            instance.save(force_insert=True)
    except IntegrityError as exc:  # the partial unique index: another start won the race
        raise Conflict("A workflow is already active on this contract.") from exc
    pipeline.insert(transition.stages)
    pipeline.insert(assigned)
    contract.status = ContractStatus.IN_REVIEW
    pipeline.save(contract, ["status", "updated_at"])
    transition.emit(signals.approval_assigned, approvals=assigned)
    return transition


@pipeline.deferred_writes()
def workflow_start_on_new_contract(
    *, contract: Contract, definition: WorkflowDefinition, started_by: User, extra_audit=()
) -> WorkflowInstance:
    """Start the match engine's pick on a contract inserted in the current transaction.

    The caller (``contract_create``) has not saved the contract yet: nobody else can see it, so
    there is nothing to lock or race, and contract, instance, stages and approvals are each
    written once, already in their started state. ``extra_audit`` rows join the same INSERT.
    """
    now = timezone.now()
    version, held = _lock_current_version(definition, creator_id=contract.created_by_id, at=now)
    contract.status = ContractStatus.IN_REVIEW
    pipeline.insert([contract])
    instance = _new_instance(contract, definition, version, started_by, now)
    transition = _Transition(
        instance, contract, started_by, now, stages=_new_stages(instance, version, held)
    )
    _record_start(transition, definition, version)
    assigned = _start_next_sequence(transition)
    pipeline.insert([instance])
    pipeline.insert(transition.stages)
    pipeline.insert(assigned)
    transition.emit(signals.approval_assigned, approvals=assigned)
    transition.flush(extra_audit=extra_audit)
    return instance


@_atomic_transition
def workflow_start_matched(*, contract: Contract, started_by: User) -> WorkflowInstance | None:
    """Start the match engine's pick on a locked contract that has no open instance (an amended
    or re-routed one); with no match the contract becomes a draft. Returns the new instance."""
    definition = match_engine.find_match(contract)
    if definition is None:
        contract.status = ContractStatus.DRAFT
        pipeline.save(contract, ["status", "updated_at"])
        return None
    transition = _start_locked(contract, definition, started_by, timezone.now())
    transition.flush()
    return transition.instance


def _new_instance(contract, definition, version, started_by, now) -> WorkflowInstance:
    instance = WorkflowInstance(
        tenant_id=contract.tenant_id,
        contract=contract,
        definition_id=definition.pk,
        definition_version=version,
        distinct_approvers=version.snapshot.get("distinct_approvers", True),
        started_by=started_by,
        started_at=now,
    )
    if Contract.tenant.is_cached(contract):
        instance.tenant = contract.tenant
    return instance


def _new_stages(instance, version, held_roles: frozenset[str]) -> list[WorkflowStage]:
    """The version's stages, unsaved, each with the roles among its entries that someone other
    than the creator holds (``held_roles``: those of every stage, read with the version)."""
    stages = [
        WorkflowStage(
            tenant_id=instance.tenant_id,
            instance=instance,
            sequence=stage["sequence"],
            stage_name=stage["stage_name"],
            approval_type=stage["approval_type"],
            min_approvals=stage["min_approvals"],
            approvers=stage["approvers"],
            sla_hours=stage["sla_hours"],
            is_required=stage["is_required"],
            reset_on_change=stage.get("reset_on_change", RESET_ANY),
        )
        for stage in version.snapshot["stages"]
    ]
    for stage in stages:
        stage.held_roles = held_roles.intersection(stage.approvers)
    return stages


def _record_start(transition, definition, version) -> None:
    transition.record(
        "workflow_started",
        transition.instance,
        status=(None, InstanceStatus.ACTIVE),
        definition=(None, str(definition.pk)),
        version=(None, version.version),
        contract=(None, str(transition.contract.pk)),
        revision=(None, transition.contract.revision),
    )


def _lock_current_version(
    definition: WorkflowDefinition, *, creator_id, at
) -> tuple[WorkflowDefinitionVersion, frozenset[str]]:
    """The definition's current version, with the definition row share-locked until commit, and
    the roles of its stages that someone other than ``creator_id`` holds at ``at``
    (``tenancy.approvers``), which opening a stage needs: one query.

    FOR SHARE lets any number of starts proceed together while an edit or delete (FOR UPDATE)
    waits for them, and they for it: a start never uses a version an edit is replacing, nor a
    definition a delete has just removed (which is then a clean 400, not a 500).
    """
    found = _CURRENT_VERSION.fetchone(
        {"definition": definition.pk, "creator": creator_id, "now": at}
    )
    if found is None:
        raise ValidationError(
            {"workflow_definition": ["This workflow definition is no longer active."]}
        )
    *columns, held = found
    return model_from_row(WorkflowDefinitionVersion, columns), frozenset(held)


# Raw SQL: the ORM takes no share lock (FOR SHARE OF the joined definition row). Prepared: every
# start runs it, and planning the join cost more than running it; the roles held are read with
# it, which saves a new contract a round trip (bench/bench_process.py).
_CURRENT_VERSION = Prepared(
    sql("SELECT {v:columns}, ARRAY(", v=WorkflowDefinitionVersion)
    + held_roles_sql(
        roles=sql(
            "ARRAY(SELECT jsonb_array_elements_text(st -> 'approvers')"
            " FROM jsonb_array_elements({v.snapshot} -> 'stages') AS st)",
            v=WorkflowDefinitionVersion,
        ),
        tenant=sql("{v.tenant}", v=WorkflowDefinitionVersion),
        creator="%(creator)s::uuid",
        now="%(now)s",
    )
    + sql(
        """)
             FROM {v} JOIN {d} ON {d.pk} = {v.definition} AND {d.version} = {v.version}
            WHERE {d.pk} = %(definition)s AND {d.is_active} FOR SHARE OF d""",
        v=WorkflowDefinitionVersion,
        d=WorkflowDefinition,
    )
)


def _start_next_sequence(transition: _Transition) -> list:
    """Open the lowest sequence still waiting; complete the workflow when none is left.

    Changes the stages in memory and returns the new approval rows unsaved: the caller writes
    both in whatever way its path allows (INSERT for a new instance, bulk UPDATE otherwise).
    """
    waiting = [stage for stage in transition.stages if stage.status == StageStatus.WAITING]
    if not waiting:
        _finish(transition, InstanceStatus.COMPLETED)
        return []
    sequence = min(stage.sequence for stage in waiting)
    transition.instance.current_sequence = sequence
    return _open_stages(transition, [stage for stage in waiting if stage.sequence == sequence])


def _open_stages(transition: _Transition, opening: list[WorkflowStage]) -> list:
    """Make ``opening`` pending with fresh due dates and a row for each approver entry that has
    no live row yet (a stage re-opened by a reset may keep decisions its policy preserved)."""
    instance, contract, now = transition.instance, transition.contract, transition.now
    held = [getattr(stage, "held_roles", None) for stage in opening]  # read with the stages
    resolved = resolve_stage_approvers(
        tenant_id=instance.tenant_id,
        entries=[entry for stage in opening for entry in stage.approvers],
        creator_id=contract.created_by_id,
        at=now,
        decided_ids=_distinct_deciders(transition),
        held_roles=None if None in held else frozenset().union(*held),
    )
    if WorkflowInstance.tenant.is_cached(instance):  # the request's tenant: cached policy
        sla = sla_policy_cached(tenant=instance.tenant, since=now.date())
    else:
        sla = sla_policy_for(tenant_id=instance.tenant_id, since=now.date())  # one query
    approvals = []
    for stage in opening:
        previous_status = stage.status
        covered = {
            row.approver
            for row in transition.rows
            if row.stage_id == stage.pk and row.status not in RETIRED_STATUSES
        }
        stage.status = StageStatus.PENDING
        stage.started_at = now
        stage.completed_at = None
        plan = _due_at(stage, now, sla, contract)
        stage.due_at, stage.sla_rule_id = plan.due_at, plan.rule_id
        for entry in stage.approvers:
            if entry in covered:
                continue
            target = resolved[entry]
            approval = WorkflowStageApproval(
                tenant_id=instance.tenant_id,
                stage=stage,
                instance=instance,
                contract=contract,
                approver=entry,
                role=target.role,
                assigned_to_id=target.assigned_to,
                on_behalf_of_id=target.on_behalf_of,
                due_at=stage.due_at,
                remind_at=plan.remind_at,
                created_at=now,
            )
            approvals.append(approval)
            if target.unresolved:
                _record_unresolved(transition, stage, approval)
        transition.record(
            "stage_started",
            stage,
            status=(previous_status, StageStatus.PENDING),
            stage_name=(None, stage.stage_name),
            due_at=(None, stage.due_at.isoformat() if stage.due_at else None),
        )
    transition.rows.extend(approvals)
    return approvals


def _distinct_deciders(transition: _Transition) -> set:
    """People who may not get another row of the instance (its definition wants distinct
    approvers and they decided one)."""
    if not transition.instance.distinct_approvers:
        return set()
    return {row.decided_by_id for row in transition.rows if row.status in DECIDED_STATUSES}


def _record_unresolved(transition: _Transition, stage, approval) -> None:
    """An entry nobody could act on went to a tenant admin: audited, and every admin told."""
    assigned = str(approval.assigned_to_id) if approval.assigned_to_id else None
    transition.record(
        "approver_unresolved",
        stage,
        stage_name=(None, stage.stage_name),
        approver=(None, approval.approver),
        assigned_to=(None, assigned),
    )
    transition.emit(signals.approver_unresolved, approval=approval)


def _due_at(stage: WorkflowStage, now, sla: SLAPolicy, contract: Contract) -> SLAPlan:
    """Due date, reminder time and governing rule (``approvals.sla.rules`` has the precedence)."""
    return sla.plan(
        contract_type=contract.contract_type,
        stage_name=stage.stage_name,
        stage_sla_hours=stage.sla_hours,
        start=now,
    )


# --- decide ----------------------------------------------------------------------------------


@_atomic_transition
def approval_act(
    *,
    tenant,
    contract_id,
    actor: User,
    action: str,
    comments: str = "",
    delegate_to: User | None = None,
    approval_id=None,
    via: str = "",
) -> WorkflowInstance:
    """Approve, reject, delegate or send back for changes one of the caller's pending approvals.

    ``via`` names the channel when it is not the API (``"email_link"``): every audit row of the
    decision carries it.
    """
    _queue_contract_lock(tenant=tenant, contract_id=contract_id)
    loaded = _open_instance_with_rows(tenant, contract_id, actor)
    if loaded is None:
        _require_contract(tenant=tenant, contract_id=contract_id)
        raise Conflict("This contract has no active workflow.", code="workflow_not_active")
    instance, stages, rows = loaded
    contract = instance.contract
    if instance.status == InstanceStatus.CHANGES_REQUESTED:
        raise Conflict(
            "Changes were requested: nobody can decide until the contract is resubmitted.",
            code="changes_requested",
        )
    joined(instance, "tenant", tenant)  # the request's object (keys the cached SLA policy)
    if contract.created_by_id == actor.pk:
        raise PermissionDenied("The contract's creator may not approve their own contract.")
    transition = _Transition(instance, contract, actor, timezone.now(), stages, rows, via=via)
    approval = _actors_approval(transition, approval_id)
    decision = _Decision(approval, ApprovalAction(action), comments, delegate_to)
    if decision.action != ApprovalAction.DELEGATE:
        _require_distinct_decider(transition, decision)
    joined(approval, "contract", contract)  # receivers read it from the row: no reload
    {
        ApprovalAction.APPROVE: _decide,
        ApprovalAction.REJECT: _decide,
        ApprovalAction.DELEGATE: _delegate,
        ApprovalAction.REQUEST_CHANGES: _request_changes,
    }[decision.action](transition, decision)
    transition.flush()
    return instance


def _open_instance_with_rows(tenant, contract_id, actor) -> tuple | None:
    """The tenant's contract's open instance with its contract (its large fields deferred) and
    definition version, and its stages and rows as ``_stages_and_rows`` reads them for
    ``actor``; or None. One query: the stages' columns follow the instance's on each row.

    Raw SQL because this runs on every decision: compiling the ORM's query (a join and a defer)
    and building its models cost more client time than any other read of the decision, and
    reading the instance and then its stages cost a round trip (bench/bench_process.py).
    """
    found = _OPEN_INSTANCE_WITH_ROWS.fetchall(
        {
            "contract": contract_id,
            "tenant": getattr(tenant, "pk", tenant),
            "open": list(OPEN_INSTANCE_STATUSES),
            "actor": actor.pk,
            "now": timezone.now(),
            "waiting": StageStatus.WAITING,
        }
    )
    if not found:
        return None
    (instance, contract, version), rest = leading_models(
        found[0], WorkflowInstance, _LOADED_CONTRACT, WorkflowDefinitionVersion
    )
    joined(instance, "contract", contract)
    joined(instance, "definition_version", version)
    width = len(found[0]) - len(rest)
    stages, rows = _stages_from(
        [values[width:] for values in found if values[width] is not None], instance
    )
    return instance, stages, rows


_LOADED_CONTRACT = Deferring(Contract, *_DEFERRED_CONTRACT_FIELDS)


@dataclass(frozen=True)
class _Decision:
    """What the actor does with the one approval they act on."""

    approval: WorkflowStageApproval
    action: ApprovalAction
    comments: str = ""
    delegate_to: User | None = None


def _stages_and_rows(instance, contract) -> tuple[list, list[WorkflowStageApproval]]:
    """The instance's stages (in their ``Meta.ordering``) and all its approval rows (by
    creation), each row with its stage object: one query, a stage joined to each of its rows.
    Each waiting stage also has ``held_roles``, its roles someone may act on
    (``tenancy.approvers``), which ``_open_stages`` needs if the change opens it. A decision reads
    the same with its instance, and whether the actor may act on each row
    (``_open_instance_with_rows``).

    Raw SQL: it shares its columns with the decision's read (``_stage_columns``).
    """
    params = {
        "now": timezone.now(),
        "instance": instance.pk,
        "creator": contract.created_by_id,
        "waiting": StageStatus.WAITING,
    }
    return _stages_from(_STAGES_AND_ROWS.fetchall(params), instance)


def _stages_from(found, instance) -> tuple[list, list[WorkflowStageApproval]]:
    """Stages and rows from the values of ``_stage_columns``, a stage's row after row (a stage
    LEFT JOIN its approval rows)."""
    stages, rows = [], []
    for stage, (_, held), approvals in one_to_many(
        found, WorkflowStage, WorkflowStageApproval, trailing=2
    ):
        joined(stage, "instance", instance)
        stage.held_roles = None if held is None else frozenset(held)
        stages.append(stage)
        for row, (eligible, _) in approvals:
            joined(row, "stage", stage)
            row.actor_eligible = eligible
            rows.append(row)
    rows.sort(key=lambda row: (row.created_at, row.pk))
    return stages, rows


# The contract's approval rows as ``eligible_approvers_sql`` reads them (with its creator). A
# decision looks for the rows its actor may act on among them, not among the instance's: the
# instance is found in the same query, and a subquery naming it would run once per row.
_CONTRACT_ROWS = sql(
    """SELECT {x.pk} AS key, {x.tenant} AS tenant_id, {x.role}, {x.assigned_to},
              {k.created_by} AS creator_id
         FROM {x} JOIN {k} ON {k.pk} = {x.contract}
        WHERE {x.contract} = %(contract)s""",
    x=WorkflowStageApproval,
    k=Contract,
)
_ACTOR_ELIGIBLE = f"""SELECT e.key
      FROM ({eligible_approvers_sql(source=_CONTRACT_ROWS, now="%(now)s")}) e
     WHERE e.user_id = %(actor)s"""  # noqa: S608 (SQL text only)


def _stage_columns(*, actor: bool, creator: str) -> str:
    """A stage's and a row's columns, whether ``%(actor)s`` may act on the row (with ``actor``;
    else false: nobody acts), and for a waiting stage the roles someone other than ``creator``
    (SQL) holds (``tenancy.approvers``)."""
    eligible = (
        sql("{a.pk} IN (", a=WorkflowStageApproval) + _ACTOR_ELIGIBLE + ")" if actor else "false"
    )
    return (
        sql("{s:columns}, {a:columns}, ", s=WorkflowStage, a=WorkflowStageApproval)
        + eligible
        + sql(", CASE WHEN {s.status} = %(waiting)s THEN ARRAY(", s=WorkflowStage)
        + held_roles_sql(
            roles=sql("{s.approvers}", s=WorkflowStage),
            tenant=sql("{s.tenant}", s=WorkflowStage),
            creator=creator,
            now="%(now)s",
        )
        + ") END"
    )


# A row's instance is its stage's: the joins name it so that the rows are read by the
# instance's index whatever the sizes the plan was made for (``core.sql.Prepared``).
_STAGES_AND_ROWS = Prepared(
    "SELECT "  # noqa: S608 (SQL text only)
    + _stage_columns(actor=False, creator="%(creator)s::uuid")
    + sql(
        """
      FROM {s} LEFT JOIN {a} ON {a.stage} = {s.pk} AND {a.instance} = %(instance)s
     WHERE {s.instance} = %(instance)s
     ORDER BY {s.sequence}, {s.stage_name}, {s.pk}""",
        s=WorkflowStage,
        a=WorkflowStageApproval,
    )
)
# At most one instance: a contract has one open instance (a partial unique index). With its
# version, whose snapshot the receivers of a completed workflow read (the signers).
_OPEN_INSTANCE_WITH_ROWS = Prepared(
    sql(
        "SELECT {i:columns}, {k:columns}, {v:columns}, ",
        i=WorkflowInstance,
        k=_LOADED_CONTRACT,
        v=WorkflowDefinitionVersion,
    )
    + _stage_columns(actor=True, creator=sql("{k.created_by}", k=_LOADED_CONTRACT))
    + sql(
        """
      FROM {i} JOIN {k} ON {k.pk} = {i.contract}
      JOIN {v} ON {v.pk} = {i.definition_version}
      LEFT JOIN {s} ON {s.instance} = {i.pk}
      LEFT JOIN {a} ON {a.stage} = {s.pk} AND {a.instance} = {i.pk}
     WHERE {i.contract} = %(contract)s AND {k.tenant} = %(tenant)s
       AND {i.status} = ANY(%(open)s)
     ORDER BY {s.sequence}, {s.stage_name}, {s.pk}""",
        i=WorkflowInstance,
        k=_LOADED_CONTRACT,
        v=WorkflowDefinitionVersion,
        s=WorkflowStage,
        a=WorkflowStageApproval,
    )
)


def _actors_approval(transition: _Transition, approval_id) -> WorkflowStageApproval:
    """The pending row of the current stage(s) the actor may act on: 403 / 409 otherwise.

    An approver of a stage that has already settled (they acted, or lost a race to the decision
    that settled it) gets 409 like any other state conflict; only outsiders get 403.
    """
    actor, current = transition.actor, transition.instance.current_sequence
    opened = [row for row in transition.rows if row.stage.sequence <= current]
    ever_mine = [row for row in opened if row.actor_eligible or row.decided_by_id == actor.pk]
    mine = [row for row in ever_mine if row.stage.sequence == current]
    pending = [row for row in mine if row.status == ApprovalStatus.PENDING and row.actor_eligible]
    if approval_id is not None:
        chosen = next((row for row in pending if row.pk == approval_id), None)
        if chosen is not None:
            return chosen
        if any(row.pk == approval_id for row in ever_mine):
            raise Conflict("That approval is no longer pending.", code="approval_not_pending")
        raise PermissionDenied("You are not an eligible approver of that approval.")
    if not ever_mine:
        raise PermissionDenied("You are not an eligible approver of the current stage.")
    if not pending:
        raise Conflict("Nothing is pending for you on this workflow.", code="nothing_pending")
    if len(pending) > 1:
        ids = ", ".join(str(row.pk) for row in pending)
        raise ValidationError(
            {"approval": [f"You hold several pending approvals; pass one of: {ids}."]}
        )
    return pending[0]


def _decided_by(transition: _Transition, user_id) -> WorkflowStageApproval | None:
    """The live decision ``user_id`` made on the instance, if any (superseded ones don't count)."""
    return next(
        (
            row
            for row in transition.rows
            if row.decided_by_id == user_id and row.status in DECIDED_STATUSES
        ),
        None,
    )


def _require_distinct_decider(transition: _Transition, decision: _Decision) -> None:
    if not transition.instance.distinct_approvers:
        return
    earlier = _decided_by(transition, transition.actor.pk)
    if earlier is not None and earlier.pk != decision.approval.pk:
        raise PermissionDenied(
            f'You already decided "{earlier.stage.stage_name}" of this workflow; its definition '
            "requires a different person for each approval.",
            code="already_decided",
        )


def _decide(transition: _Transition, decision: _Decision) -> None:
    approval, comments = decision.approval, decision.comments
    approved = decision.action == ApprovalAction.APPROVE
    approval.status = ApprovalStatus.APPROVED if approved else ApprovalStatus.REJECTED
    approval.decided_by = transition.actor
    approval.decided_at = transition.now
    approval.comments = comments
    approval.revision = transition.contract.revision
    # metadata too: the notifications app's pre_save hook records the SLA state in it.
    pipeline.save(
        approval, ["status", "decided_by", "decided_at", "comments", "revision", "metadata"]
    )
    transition.record(
        "approval_approved" if approved else "approval_rejected",
        approval,
        status=(ApprovalStatus.PENDING, approval.status),
        stage_name=(None, approval.stage.stage_name),
        comments=(None, comments),
        revision=(None, approval.revision),
        content_hash=(None, transition.contract.content_hash),
    )
    transition.emit(signals.approval_decided, approval=approval)
    _settle_stage(transition, approval.stage)
    transition.emit_outcome()


def _live_rows(transition: _Transition, stage) -> list[WorkflowStageApproval]:
    return [
        row
        for row in transition.rows
        if row.stage_id == stage.pk and row.status not in RETIRED_STATUSES
    ]


def _settle_stage(transition: _Transition, stage) -> None:
    instance = transition.instance
    rows = _live_rows(transition, stage)
    outcome = stage_outcome(stage.approval_type, stage.min_approvals, [r.status for r in rows])
    if outcome is None:
        return  # still waiting for decisions
    pending = [row for row in rows if row.status == ApprovalStatus.PENDING]
    rejects_workflow = outcome == StageStatus.REJECTED and stage.is_required
    if not rejects_workflow:  # a rejected workflow cancels its pending rows instead
        _close_rows(transition, pending, ApprovalStatus.SKIPPED, "approval_skipped")
    stage.status = outcome
    stage.completed_at = transition.now
    transition.record(
        "stage_completed",
        stage,
        status=(StageStatus.PENDING, outcome),
        stage_name=(None, stage.stage_name),
    )
    if rejects_workflow:
        pipeline.save(stage, ["status", "completed_at"])
        _finish(transition, InstanceStatus.REJECTED)
        return
    current = [row for row in transition.stages if row.sequence == instance.current_sequence]
    if not all(row.status in SETTLED_STAGE_STATUSES for row in current):
        pipeline.save(stage, ["status", "completed_at"])  # a parallel stage is still open
        return
    assigned = _start_next_sequence(transition)
    if instance.status != InstanceStatus.ACTIVE:  # that was the last stage
        pipeline.save(stage, ["status", "completed_at"])
        return
    opening = [row for row in transition.stages if row.sequence == instance.current_sequence]
    _save_stages([stage, *opening])
    pipeline.insert(assigned)
    pipeline.save(instance, ["current_sequence"])
    transition.emit(signals.approval_assigned, approvals=assigned)


def _save_stages(stages: list[WorkflowStage]) -> None:
    """Write stages' status, times and SLA rule in one UPDATE.

    Raw SQL because this runs on every decision that advances a workflow, and ``bulk_update``'s
    compilation (a CASE WHEN per column, each with a branch per row) cost more CPU than the rest
    of the decision's writes together; it writes the same columns. One text whatever the number
    of stages (arrays), so it is prepared.
    """
    if not stages:
        return
    pipeline.execute(
        _SAVE_STAGES,
        {
            "ids": [stage.pk for stage in stages],
            "statuses": [stage.status for stage in stages],
            "completed": [stage.completed_at for stage in stages],
            "started": [stage.started_at for stage in stages],
            "due": [stage.due_at for stage in stages],
            "rules": [stage.sla_rule_id for stage in stages],
        },
    )


_SAVE_STAGES = Prepared(
    sql(
        """UPDATE {s}
   SET {s.status:column} = v.status, {s.completed_at:column} = v.completed_at,
       {s.started_at:column} = v.started_at, {s.due_at:column} = v.due_at,
       {s.sla_rule:column} = v.sla_rule_id
  FROM unnest(%(ids)s::uuid[], %(statuses)s::text[], %(completed)s::timestamptz[],
              %(started)s::timestamptz[], %(due)s::timestamptz[], %(rules)s::uuid[])
       AS v (id, status, completed_at, started_at, due_at, sla_rule_id)
 WHERE {s.pk} = v.id""",
        s=WorkflowStage,
    )
)


def _close_rows(transition: _Transition, rows, status, action) -> None:
    if not rows:
        return
    for row in rows:
        transition.record(action, row, status=(row.status, status))
        row.status = status
    closing = WorkflowStageApproval.objects.filter(pk__in=[row.pk for row in rows])
    pipeline.update(closing, status=status)


def _finish(transition: _Transition, outcome, *, action: str | None = None, **details) -> None:
    """Close the instance: pending rows and unfinished stages are cancelled, contract follows.

    A completed workflow has neither (every stage settled), so only rejection and cancellation
    look for them. ``action`` names the audit row (default ``workflow_<outcome>``); ``details``
    add to its changes (and may override ``contract_status``).
    """
    instance, contract, now = transition.instance, transition.contract, transition.now
    if outcome != InstanceStatus.COMPLETED:
        still_pending = list(instance.approvals.filter(status=ApprovalStatus.PENDING))
        _close_rows(transition, still_pending, ApprovalStatus.CANCELLED, "approval_cancelled")
        pipeline.update(
            instance.stages.filter(status__in=[StageStatus.WAITING, StageStatus.PENDING]),
            status=StageStatus.CANCELLED,
            completed_at=now,
        )
    previous_status = instance.status
    instance.status = outcome
    instance.completed_at = now
    instance.current_sequence = None
    pipeline.save(instance, ["status", "completed_at", "current_sequence"])
    contract_status = {
        InstanceStatus.COMPLETED: ContractStatus.APPROVED,
        InstanceStatus.REJECTED: ContractStatus.REJECTED,
        InstanceStatus.CANCELLED: ContractStatus.CANCELLED,
    }[outcome]
    transition.record(
        action or f"workflow_{outcome}",
        instance,
        status=(previous_status, outcome),
        **{"contract_status": (contract.status, contract_status), **details},
    )
    contract.status = contract_status
    pipeline.save(contract, ["status", "updated_at"])


# --- delegate --------------------------------------------------------------------------------


def _delegate(transition: _Transition, decision: _Decision) -> None:
    instance, contract, actor, now = (
        transition.instance,
        transition.contract,
        transition.actor,
        transition.now,
    )
    approval, delegate_to, comments = decision.approval, decision.delegate_to, decision.comments
    if delegate_to is None:
        raise ValidationError({"delegate_to": ["Required to delegate."]})
    if delegate_to.tenant_id != instance.tenant_id or not delegate_to.is_active:
        raise ValidationError({"delegate_to": ["Unknown user."]})
    if delegate_to.pk == actor.pk:
        raise ValidationError({"delegate_to": ["You cannot delegate to yourself."]})
    if delegate_to.pk == contract.created_by_id:
        raise ValidationError(
            {"delegate_to": ["The contract's creator may not approve their own contract."]}
        )
    if instance.distinct_approvers and _decided_by(transition, delegate_to.pk) is not None:
        raise ValidationError(
            {
                "delegate_to": [
                    "This person already decided an approval of this workflow; its definition "
                    "requires a different person for each approval."
                ]
            }
        )
    assignee = personal_assignees(
        tenant_id=instance.tenant_id,
        user_ids=[delegate_to.pk],
        creator_id=contract.created_by_id,
        at=now,
        decided_ids=_distinct_deciders(transition) | {actor.pk},
    )[delegate_to.pk]
    approval.status = ApprovalStatus.DELEGATED
    approval.delegated_to = delegate_to
    approval.decided_by = actor
    approval.decided_at = now
    approval.comments = comments
    approval.revision = contract.revision
    pipeline.save(
        approval,
        ["status", "delegated_to", "decided_by", "decided_at", "comments", "revision", "metadata"],
    )
    successor = WorkflowStageApproval(
        tenant_id=instance.tenant_id,
        stage=approval.stage,
        instance=instance,
        contract=contract,
        approver=approval.approver,
        role=approval.role,
        assigned_to_id=assignee.user_id,
        on_behalf_of_id=assignee.on_behalf_of,
        due_at=approval.due_at,
        # The SLA state goes with the row: no second reminder, no second breach.
        remind_at=approval.remind_at,
        reminded_at=approval.reminded_at,
        overdue_at=approval.overdue_at,
        delegated_from=approval,
        created_at=now,
    )
    pipeline.create(successor)
    transition.record(
        "approval_delegated",
        approval,
        status=(ApprovalStatus.PENDING, ApprovalStatus.DELEGATED),
        delegated_to=(None, str(delegate_to.pk)),
        new_approval=(None, str(successor.pk)),
        **({"covered_by": (None, str(assignee.user_id))} if assignee.on_behalf_of else {}),
    )
    successor.contract = contract
    transition.emit(signals.approval_delegated, approval=successor, previous=approval)
    transition.emit(signals.approval_assigned, approvals=[successor])


# --- request changes and resubmit ------------------------------------------------------------


def _request_changes(transition: _Transition, decision: _Decision) -> None:
    """Send the contract back to its requester: the instance waits, nobody can decide, and the
    SLA clock of the waiting rows stops until ``workflow_resubmit``."""
    approval, comments = decision.approval, decision.comments
    if not comments.strip():
        raise ValidationError({"comments": ["Say what has to change."]})
    instance, contract = transition.instance, transition.contract
    instance.status = InstanceStatus.CHANGES_REQUESTED
    instance.changes_requested_by = transition.actor
    instance.changes_requested_stage = approval.stage
    instance.changes_requested_revision = contract.revision
    instance.changes_requested_at = transition.now
    instance.changes_requested_comments = comments
    pipeline.save(
        instance,
        [
            "status",
            "changes_requested_by",
            "changes_requested_stage",
            "changes_requested_revision",
            "changes_requested_at",
            "changes_requested_comments",
        ],
    )
    transition.record(
        "changes_requested",
        instance,
        status=(InstanceStatus.ACTIVE, InstanceStatus.CHANGES_REQUESTED),
        contract_status=(contract.status, ContractStatus.CHANGES_REQUESTED),
        stage_name=(None, approval.stage.stage_name),
        approval=(None, str(approval.pk)),
        comments=(None, comments),
        revision=(None, contract.revision),
    )
    contract.status = ContractStatus.CHANGES_REQUESTED
    pipeline.save(contract, ["status", "updated_at"])
    transition.emit(signals.changes_requested, approval=approval, comments=comments)


@_atomic_transition
def workflow_resubmit(*, tenant, contract_id, actor: User) -> WorkflowInstance:
    """Hand a contract sent back for changes to its approvers again.

    The waiting rows' due dates move by the time it spent with the requester; the requesting
    stage is re-opened, and the reset policies apply to the fields changed since the request.
    """
    contract = _lock_contract(tenant=tenant, contract_id=contract_id)
    require_contract_editor(contract=contract, user=actor)
    instance = _open_instance(contract)
    if instance is None or instance.status != InstanceStatus.CHANGES_REQUESTED:
        raise Conflict(
            "Only a contract sent back for changes can be resubmitted.",
            code="not_changes_requested",
        )
    instance.tenant = tenant
    transition = _Transition.loaded(instance, contract, actor)
    paused = transition.now - instance.changes_requested_at
    _extend_due_dates(transition, paused)
    changed = _fields_changed_since(contract, instance.changes_requested_revision)
    requesting_stage_id = instance.changes_requested_stage_id
    transition.record(
        "workflow_resubmitted",
        instance,
        status=(InstanceStatus.CHANGES_REQUESTED, InstanceStatus.ACTIVE),
        contract_status=(contract.status, ContractStatus.IN_REVIEW),
        revision=(instance.changes_requested_revision, contract.revision),
        changed_fields=(None, changed),
        paused_seconds=(None, int(paused.total_seconds())),
    )
    instance.status = InstanceStatus.ACTIVE
    instance.changes_requested_by = None
    instance.changes_requested_stage = None
    instance.changes_requested_revision = None
    instance.changes_requested_at = None
    instance.changes_requested_comments = ""
    contract.status = ContractStatus.IN_REVIEW
    pipeline.save(contract, ["status", "updated_at"])
    reopening = [
        stage
        for stage in transition.stages
        if _holds_decisions(transition, stage)
        and (stage.pk == requesting_stage_id or reset_fires(stage.reset_on_change, changed))
    ]
    _reopen(transition, reopening, changed)
    pipeline.save(
        instance,
        [
            "status",
            "current_sequence",
            "changes_requested_by",
            "changes_requested_stage",
            "changes_requested_revision",
            "changes_requested_at",
            "changes_requested_comments",
        ],
    )
    transition.flush()
    return instance


def _extend_due_dates(transition: _Transition, paused) -> None:
    """Pending rows and stages are due later by the time they spent with the requester: the
    whole pause, or since they were created or started during it (re-opened by an edit). No
    breach is charged to approvers for the time the contract spent with its requester."""
    since, now = transition.instance.changes_requested_at, transition.now
    waited = [row for row in transition.rows if row.status == ApprovalStatus.PENDING]
    for row in waited:
        shift = min(paused, now - max(row.created_at, since))
        row.due_at = row.due_at + shift if row.due_at else None
        row.remind_at = row.remind_at + shift if row.remind_at else None
    if waited:
        WorkflowStageApproval.objects.bulk_update(waited, ["due_at", "remind_at"])
    pending_stages = [
        stage
        for stage in transition.stages
        if stage.status == StageStatus.PENDING and stage.due_at is not None
    ]
    for stage in pending_stages:
        stage.due_at += min(paused, now - max(stage.started_at or since, since))
    _save_stages(pending_stages)


def _fields_changed_since(contract: Contract, revision: int | None) -> list[str]:
    if revision is None or revision == contract.revision:
        return []
    contents = dict(
        ContractRevision.objects.filter(
            contract=contract, number__in=[revision, contract.revision]
        ).values_list("number", "content")
    )
    return changed_fields(contents.get(revision, {}), contents.get(contract.revision, {}))


# --- changes during review -------------------------------------------------------------------


@pipeline.deferred_writes()
def workflow_revise(*, contract: Contract, changed: list[str], actor: User) -> None:
    """React to a new revision of a contract under review (the caller holds its lock).

    Another definition now matching re-routes the contract (the running instance is cancelled,
    the match starts; no match leaves a draft). Otherwise the stages whose ``reset_on_change``
    fires on ``changed`` and hold decisions are re-opened.
    """
    instance = _open_instance(contract)
    if instance is None or not changed:
        return
    match = match_engine.find_match(contract)
    if match is None or match.pk != instance.definition_id:
        _reroute(_Transition(instance, contract, actor, timezone.now()), match)
        return
    transition = _Transition.loaded(instance, contract, actor)
    reopening = [
        stage for stage in transition.stages if _reset_fires_on(transition, stage, changed)
    ]
    if reopening:
        _reopen(transition, reopening, changed)
        pipeline.save(instance, ["current_sequence"])
    transition.flush()


def _holds_decisions(transition: _Transition, stage) -> bool:
    return any(row.status in DECIDED_STATUSES for row in _live_rows(transition, stage))


def _reset_fires_on(transition: _Transition, stage, changed) -> bool:
    """The stage holds a live decision and its policy fires on ``changed``."""
    return _holds_decisions(transition, stage) and reset_fires(stage.reset_on_change, changed)


def _reroute(transition: _Transition, match: WorkflowDefinition | None) -> None:
    contract = transition.contract
    deciders = [
        row
        for row in transition.instance.approvals.filter(status__in=DECIDED_STATUSES).select_related(
            "stage"
        )
        if row.decided_by_id is not None
    ]
    _finish(
        transition,
        InstanceStatus.CANCELLED,
        action="workflow_rerouted",
        reason=(None, ResetReason.REROUTED),
        to_definition=(None, str(match.pk) if match else None),
        # Where the contract ends up: under the new workflow, or a draft (not 'cancelled').
        contract_status=(
            contract.status,
            ContractStatus.IN_REVIEW if match else ContractStatus.DRAFT,
        ),
    )
    if deciders:
        transition.emit(signals.approvals_reset, approvals=deciders, reason=ResetReason.REROUTED)
    transition.flush()
    workflow_start_matched(contract=contract, started_by=transition.actor)


def _reopen(transition: _Transition, reopening: list[WorkflowStage], changed) -> None:
    """Re-open ``reopening`` (stages that hold decisions their policy no longer accepts).

    Their approved, rejected and skipped rows become ``superseded`` and each of their approver
    entries gets a fresh pending row. The workflow goes back to the lowest re-opened sequence,
    never forward: a re-opened stage after the current one (a waiting stage that kept a decision
    through an earlier reset) only loses its decisions and waits for its turn. Later stages still
    open return to ``waiting`` (their pending rows superseded, decisions their own policy keeps
    preserved), later settled stages whose policy did not fire stay settled.
    """
    if not reopening:
        return
    instance = transition.instance
    lowest = min(stage.sequence for stage in reopening)
    if instance.current_sequence is not None:
        lowest = min(lowest, instance.current_sequence)
    superseded, touched = [], []
    for stage in transition.stages:
        if stage.sequence < lowest:
            continue
        live = _live_rows(transition, stage)
        if stage in reopening:
            retire = [
                row
                for row in live
                if row.status != ApprovalStatus.PENDING or stage.sequence > lowest
            ]
        elif stage.sequence > lowest and stage.status == StageStatus.PENDING:
            retire = [row for row in live if row.status == ApprovalStatus.PENDING]
        else:
            continue  # settled and kept, or a parallel stage of the lowest sequence
        superseded += retire
        touched.append(stage)
        if stage.sequence > lowest:
            stage.status = StageStatus.WAITING
            stage.started_at = stage.completed_at = stage.due_at = stage.sla_rule_id = None
    deciders = [row for row in superseded if row.status in DECIDED_STATUSES]
    transition.record(
        "approvals_reset",
        instance,
        current_stage=(instance.current_sequence, lowest),
        revision=(None, transition.contract.revision),
        changed_fields=(None, list(changed)),
        stages=(None, [stage.stage_name for stage in reopening]),
        superseded=(None, [str(row.pk) for row in superseded]),
    )
    _close_rows(transition, superseded, ApprovalStatus.SUPERSEDED, "approval_superseded")
    instance.current_sequence = lowest
    opening = [stage for stage in touched if stage.sequence == lowest]
    assigned = _open_stages(transition, opening) if opening else []
    _save_stages(touched)
    pipeline.insert(assigned)
    if deciders:
        transition.emit(signals.approvals_reset, approvals=deciders, reason=ResetReason.CHANGED)
    if assigned:
        transition.emit(signals.approval_assigned, approvals=assigned)


# --- cancel ----------------------------------------------------------------------------------


@_atomic_transition
def workflow_cancel(*, tenant, contract_id, actor: User, reason: str = "") -> WorkflowInstance:
    """Cancel the open workflow: the contract's creator or ``workflows.manage`` (403 otherwise)."""
    contract = _lock_contract(tenant=tenant, contract_id=contract_id)
    _require_workflow_controller(contract, actor, "cancel its workflow")
    instance = _open_instance(contract)
    if instance is None:
        raise Conflict("This contract has no active workflow.", code="workflow_not_active")
    transition = _Transition(instance, contract, actor, timezone.now())
    details = {"reason": (None, reason)} if reason else {}
    _finish(transition, InstanceStatus.CANCELLED, **details)
    transition.emit_outcome()
    transition.flush()
    return instance
