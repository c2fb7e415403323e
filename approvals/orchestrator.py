"""The orchestrator: every state change of a workflow instance and its approvals.

Each public function is one transaction that first locks the instance row (or, for a start, the
contract row), so concurrent decisions on one workflow are serialized: nothing double-advances,
no stage's approvals are created twice, no decision is lost. Every transition is checked against
the state machine, writes its audit rows in the same transaction and sends its domain signal.

Stage semantics (API.md):
- ``all``: every approver entry must approve; one rejection rejects the stage.
- ``any``: the first decision settles the stage; on approval the other pending rows are skipped.
- ``quorum``: ``min_approvals`` approvals complete it (the rest are skipped); it is rejected once
  the remaining pending rows can no longer reach the quorum.
- A rejected required stage rejects the workflow (remaining pending rows are cancelled); a
  rejected optional stage is recorded and the workflow goes on.
- Stages sharing a sequence run in parallel; the next sequence starts when all of them settled.
"""

from dataclasses import dataclass, field

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError

from approvals import signals
from approvals.models import (
    ApprovalStatus,
    InstanceStatus,
    StageStatus,
    WorkflowInstance,
    WorkflowStage,
    WorkflowStageApproval,
)
from approvals.selectors import sla_policy_cached, sla_policy_for
from approvals.sla_policy import SLAPlan, SLAPolicy
from audit.services import audit_record_many
from config.exceptions import Conflict
from contracts.models import Contract, ContractStatus
from tenancy.models import User, UserRole
from workflows.engine import match_engine
from workflows.models import WorkflowDefinition, WorkflowDefinitionVersion
from workflows.stages import parse_approver

SETTLED_STAGE_STATUSES = (StageStatus.APPROVED, StageStatus.REJECTED, StageStatus.SKIPPED)
RESTARTABLE_CONTRACT_STATUSES = (
    ContractStatus.DRAFT,
    ContractStatus.REJECTED,
    ContractStatus.CANCELLED,
)


class ApprovalAction:
    APPROVE = "approve"
    REJECT = "reject"
    DELEGATE = "delegate"
    CHOICES = (APPROVE, REJECT, DELEGATE)


@dataclass
class _Changes:
    """What one transaction did: its audit rows and signals go out together at the end.

    ``flush`` writes every audit row in one INSERT and runs every receiver under one savepoint
    (see ``approvals.signals.dispatch``), so a transition's cost does not grow with the number of
    things it records or announces.
    """

    instance: WorkflowInstance
    actor: User | None
    audit: list = field(default_factory=list)
    sends: list = field(default_factory=list)

    def record(self, action: str, resource, **changes) -> None:
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
        audit_record_many([*extra_audit, *self.audit])
        signals.dispatch(self.sends)


# --- start -----------------------------------------------------------------------------------


@transaction.atomic
def workflow_start(
    *, contract: Contract, started_by: User | None, definition: WorkflowDefinition | None = None
) -> WorkflowInstance:
    """Start ``definition`` (or the match engine's pick) on an existing contract.

    400 when nothing matches, 409 when a workflow is already active or the contract is approved.
    """
    contract = (
        Contract.objects.select_for_update().defer("text", "clause_findings").get(pk=contract.pk)
    )
    if WorkflowInstance.objects.filter(contract=contract, status=InstanceStatus.ACTIVE).exists():
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
    version = _lock_current_version(definition)
    instance = _new_instance(contract, definition, version, started_by)
    changes = _Changes(instance=instance, actor=started_by)
    stages = _new_stages(instance, version)
    _record_start(changes, contract, definition, version)
    assigned = _start_next_sequence(instance, stages, contract, changes, instance.started_at)
    try:
        with transaction.atomic():
            instance.save(force_insert=True)
    except IntegrityError as exc:  # the partial unique index: another start won the race
        raise Conflict("A workflow is already active on this contract.") from exc
    WorkflowStage.objects.bulk_create(stages)
    WorkflowStageApproval.objects.bulk_create(assigned)
    contract.status = ContractStatus.IN_REVIEW
    contract.save(update_fields=["status", "updated_at"])
    changes.emit(signals.approval_assigned, approvals=assigned)
    changes.flush()
    return instance


def workflow_start_on_new_contract(
    *, contract: Contract, definition: WorkflowDefinition, started_by: User, extra_audit=()
) -> WorkflowInstance:
    """Start the match engine's pick on a contract inserted in the current transaction.

    The caller (``contract_create``) has not saved the contract yet: nobody else can see it, so
    there is nothing to lock or race, and contract, instance, stages and approvals are each
    written once, already in their started state. ``extra_audit`` rows join the same INSERT.
    """
    version = _lock_current_version(definition)
    contract.status = ContractStatus.IN_REVIEW
    contract.save(force_insert=True)
    instance = _new_instance(contract, definition, version, started_by)
    changes = _Changes(instance=instance, actor=started_by)
    stages = _new_stages(instance, version)
    _record_start(changes, contract, definition, version)
    assigned = _start_next_sequence(instance, stages, contract, changes, instance.started_at)
    instance.save(force_insert=True)
    WorkflowStage.objects.bulk_create(stages)
    WorkflowStageApproval.objects.bulk_create(assigned)
    changes.emit(signals.approval_assigned, approvals=assigned)
    changes.flush(extra_audit=extra_audit)
    return instance


def _new_instance(contract, definition, version, started_by) -> WorkflowInstance:
    instance = WorkflowInstance(
        tenant_id=contract.tenant_id,
        contract=contract,
        definition_id=definition.pk,
        definition_version=version,
        started_by=started_by,
        started_at=timezone.now(),
    )
    if Contract.tenant.is_cached(contract):
        instance.tenant = contract.tenant
    return instance


def _new_stages(instance, version) -> list[WorkflowStage]:
    return [
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
        )
        for stage in version.snapshot["stages"]
    ]


def _record_start(changes, contract, definition, version) -> None:
    changes.record(
        "workflow_started",
        changes.instance,
        status=(None, InstanceStatus.ACTIVE),
        definition=(None, str(definition.pk)),
        version=(None, version.version),
        contract=(None, str(contract.pk)),
    )


def _lock_current_version(definition: WorkflowDefinition) -> WorkflowDefinitionVersion:
    """The definition's current version, with the definition row share-locked until commit.

    FOR SHARE lets any number of starts proceed together while an edit or delete (FOR UPDATE)
    waits for them, and they for it: a start never uses a version an edit is replacing, nor a
    definition a delete has just removed (which is then a clean 400, not a 500). One query.
    """
    versions = WorkflowDefinitionVersion._meta.db_table
    definitions = WorkflowDefinition._meta.db_table
    found = list(
        WorkflowDefinitionVersion.objects.raw(
            f"SELECT v.* FROM {versions} v JOIN {definitions} d "  # noqa: S608 (table names)
            "ON d.id = v.definition_id AND d.version = v.version "
            "WHERE d.id = %s AND d.is_active FOR SHARE OF d",
            [definition.pk],
        )
    )
    if not found:
        raise ValidationError(
            {"workflow_definition": ["This workflow definition is no longer active."]}
        )
    return found[0]


def _start_next_sequence(instance, stages, contract, changes, now) -> list:
    """Open the lowest sequence still waiting; complete the workflow when none is left.

    Changes the stages in memory and returns the new approval rows unsaved: the caller writes
    both in whatever way its path allows (INSERT for a new instance, bulk UPDATE otherwise).
    """
    waiting = [stage for stage in stages if stage.status == StageStatus.WAITING]
    if not waiting:
        _finish(instance, contract, changes, InstanceStatus.COMPLETED, now)
        return []
    sequence = min(stage.sequence for stage in waiting)
    opening = [stage for stage in waiting if stage.sequence == sequence]
    instance.current_sequence = sequence
    named_ids = {
        user_id
        for stage in opening
        for _, user_id in map(parse_approver, stage.approvers)
        if user_id is not None
    }
    existing_users = set(User.objects.filter(pk__in=named_ids).values_list("pk", flat=True))
    if WorkflowInstance.tenant.is_cached(instance):  # the request's tenant: cached policy
        sla = sla_policy_cached(tenant=instance.tenant, since=now.date())
    else:
        sla = sla_policy_for(tenant_id=instance.tenant_id, since=now.date())  # one query
    approvals = []
    for stage in opening:
        stage.status = StageStatus.PENDING
        stage.started_at = now
        plan = _due_at(stage, now, sla, contract)
        stage.due_at, stage.sla_rule_id = plan.due_at, plan.rule_id
        for entry in stage.approvers:
            role, user_id = parse_approver(entry)
            approvals.append(
                WorkflowStageApproval(
                    tenant_id=instance.tenant_id,
                    stage=stage,
                    instance=instance,
                    contract=contract,
                    approver=entry,
                    role=role,
                    assigned_to_id=user_id if user_id in existing_users else None,
                    due_at=stage.due_at,
                    remind_at=plan.remind_at,
                    created_at=now,
                )
            )
        changes.record(
            "stage_started",
            stage,
            status=(StageStatus.WAITING, StageStatus.PENDING),
            stage_name=(None, stage.stage_name),
            due_at=(None, stage.due_at.isoformat() if stage.due_at else None),
        )
    return approvals


def _due_at(stage: WorkflowStage, now, sla: SLAPolicy, contract: Contract) -> SLAPlan:
    """Due date, reminder time and governing rule (``approvals.sla_policy`` has the precedence)."""
    return sla.plan(
        contract_type=contract.contract_type,
        stage_name=stage.stage_name,
        stage_sla_hours=stage.sla_hours,
        start=now,
    )


# --- decide ----------------------------------------------------------------------------------


@transaction.atomic
def approval_act(
    *,
    tenant,
    contract_id,
    actor: User,
    action: str,
    comments: str = "",
    delegate_to: User | None = None,
    approval_id=None,
) -> WorkflowInstance:
    """Approve, reject or delegate one of the caller's pending approvals on the contract."""
    instance = (
        WorkflowInstance.objects.select_for_update(of=("self",))
        .select_related("contract")
        .defer("contract__text", "contract__clause_findings")
        .filter(tenant_id=tenant.pk, contract_id=contract_id, status=InstanceStatus.ACTIVE)
        .first()
    )
    if instance is None:
        if not Contract.objects.for_tenant(tenant).filter(pk=contract_id).exists():
            raise NotFound()
        raise Conflict("This contract has no active workflow.", code="workflow_not_active")
    contract = instance.contract
    instance.tenant = tenant  # the request's tenant object (keys the cached SLA policy)
    if contract.created_by_id == actor.pk:
        raise PermissionDenied("The contract's creator may not approve their own contract.")
    stages = list(instance.stages.all())
    rows = _current_rows(instance, stages, actor)
    approval = _actors_approval(instance, rows, actor, approval_id)
    approval.contract = contract  # receivers read it from the row: no reload
    now = timezone.now()
    changes = _Changes(instance=instance, actor=actor)
    if action == ApprovalAction.DELEGATE:
        _delegate(instance, contract, approval, actor, delegate_to, comments, changes, now)
    else:
        _decide(instance, contract, approval, rows, stages, actor, action, comments, changes, now)
    changes.flush()
    return instance


def _current_rows(instance, stages, actor) -> list[WorkflowStageApproval]:
    """Every approval row of the stages opened so far, each with its stage object from
    ``stages``, and whether ``actor`` holds the row's role (unexpired): one query.

    Raw SQL because this runs on every decision and the ORM's compilation of the correlated
    EXISTS cost three times the query itself; it reads the same columns the ORM would.
    """
    opened = {stage.pk: stage for stage in stages if stage.sequence <= instance.current_sequence}
    rows = list(
        WorkflowStageApproval.objects.raw(
            _CURRENT_ROWS, [actor.pk, timezone.now(), instance.pk, [str(pk) for pk in opened]]
        )
    )
    for row in rows:
        row.stage = opened[row.stage_id]
    return rows


_CURRENT_ROWS = f"""
SELECT a.*, EXISTS (
         SELECT 1 FROM {UserRole._meta.db_table} r
          WHERE r.tenant_id = a.tenant_id AND r.user_id = %s AND r.role = a.role
            AND (r.expires_at IS NULL OR r.expires_at > %s)) AS actor_holds_role
  FROM {WorkflowStageApproval._meta.db_table} a
 WHERE a.instance_id = %s AND a.stage_id = ANY(%s::uuid[])
 ORDER BY a.created_at, a.id
"""  # noqa: S608 (table names only)


def _actors_approval(instance, rows, actor, approval_id) -> WorkflowStageApproval:
    """The pending row of the current stage(s) the actor may act on: 403 / 409 otherwise.

    An approver of a stage that has already settled (they acted, or lost a race to the decision
    that settled it) gets 409 like any other state conflict; only outsiders get 403.
    """

    def eligible(row) -> bool:
        if row.assigned_to_id is not None:
            return row.assigned_to_id == actor.pk
        return bool(row.role) and row.actor_holds_role

    ever_mine = [row for row in rows if eligible(row) or row.decided_by_id == actor.pk]
    mine = [row for row in ever_mine if row.stage.sequence == instance.current_sequence]
    pending = [row for row in mine if row.status == ApprovalStatus.PENDING and eligible(row)]
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


def _decide(
    instance, contract, approval, rows, stages, actor, action, comments, changes, now
) -> None:
    approved = action == ApprovalAction.APPROVE
    approval.status = ApprovalStatus.APPROVED if approved else ApprovalStatus.REJECTED
    approval.decided_by = actor
    approval.decided_at = now
    approval.comments = comments
    # metadata too: the notifications app's pre_save hook records the SLA state in it.
    approval.save(update_fields=["status", "decided_by", "decided_at", "comments", "metadata"])
    changes.record(
        "approval_approved" if approved else "approval_rejected",
        approval,
        status=(ApprovalStatus.PENDING, approval.status),
        stage_name=(None, approval.stage.stage_name),
        comments=(None, comments),
    )
    changes.emit(signals.approval_decided, approval=approval)
    stage_rows = [row for row in rows if row.stage_id == approval.stage_id]
    _settle_stage(instance, contract, approval.stage, stage_rows, stages, changes, now)
    changes.emit_outcome()


def _settle_stage(instance, contract, stage, stage_rows, stages, changes, now) -> None:
    rows = [row for row in stage_rows if row.status != ApprovalStatus.DELEGATED]
    approvals = sum(row.status == ApprovalStatus.APPROVED for row in rows)
    rejections = sum(row.status == ApprovalStatus.REJECTED for row in rows)
    pending = [row for row in rows if row.status == ApprovalStatus.PENDING]
    if stage.approval_type == "any":
        needed = 1
    elif stage.approval_type == "quorum":
        needed = stage.min_approvals
    else:
        needed = len(rows)
    if approvals >= needed:
        outcome = StageStatus.APPROVED
    elif rejections and (stage.approval_type != "quorum" or approvals + len(pending) < needed):
        outcome = StageStatus.REJECTED
    else:
        return  # still waiting for decisions
    rejects_workflow = outcome == StageStatus.REJECTED and stage.is_required
    if not rejects_workflow:  # a rejected workflow cancels its pending rows instead
        _close_rows(pending, ApprovalStatus.SKIPPED, changes, "approval_skipped")
    stage.status = outcome
    stage.completed_at = now
    changes.record(
        "stage_completed",
        stage,
        status=(StageStatus.PENDING, outcome),
        stage_name=(None, stage.stage_name),
    )
    if rejects_workflow:
        stage.save(update_fields=["status", "completed_at"])
        _finish(instance, contract, changes, InstanceStatus.REJECTED, now)
        return
    current = [row for row in stages if row.sequence == instance.current_sequence]
    if not all(row.status in SETTLED_STAGE_STATUSES for row in current):
        stage.save(update_fields=["status", "completed_at"])  # a parallel stage is still open
        return
    assigned = _start_next_sequence(instance, stages, contract, changes, now)
    if instance.status != InstanceStatus.ACTIVE:  # that was the last stage
        stage.save(update_fields=["status", "completed_at"])
        return
    opening = [row for row in stages if row.sequence == instance.current_sequence]
    _save_stages([stage, *opening])
    WorkflowStageApproval.objects.bulk_create(assigned)
    instance.save(update_fields=["current_sequence"])
    changes.emit(signals.approval_assigned, approvals=assigned)


def _save_stages(stages: list[WorkflowStage]) -> None:
    """Write the settled stage and the opening ones (status, times, SLA rule) in one UPDATE.

    Raw SQL because this runs on every decision that advances a workflow, and ``bulk_update``'s
    compilation (a CASE WHEN per column, each with a branch per row) cost more CPU than the rest
    of the decision's writes together; it writes the same columns.
    """
    row = "(%s::uuid, %s, %s::timestamptz, %s::timestamptz, %s::timestamptz, %s::uuid)"
    params = [
        value
        for stage in stages
        for value in (
            stage.pk,
            stage.status,
            stage.completed_at,
            stage.started_at,
            stage.due_at,
            stage.sla_rule_id,
        )
    ]
    with connection.cursor() as cursor:
        cursor.execute(_SAVE_STAGES.format(rows=", ".join([row] * len(stages))), params)


_SAVE_STAGES = f"""
UPDATE {WorkflowStage._meta.db_table} AS s
   SET status = v.status, completed_at = v.completed_at, started_at = v.started_at,
       due_at = v.due_at, sla_rule_id = v.sla_rule_id
  FROM (VALUES {{rows}}) AS v (id, status, completed_at, started_at, due_at, sla_rule_id)
 WHERE s.id = v.id
"""  # noqa: S608 (table name only; the rows are placeholders)


def _close_rows(rows, status, changes, action) -> None:
    if not rows:
        return
    for row in rows:
        row.status = status
        changes.record(action, row, status=(ApprovalStatus.PENDING, status))
    WorkflowStageApproval.objects.filter(pk__in=[row.pk for row in rows]).update(status=status)


def _finish(instance, contract, changes, outcome, now) -> None:
    """Close the instance: pending rows and unfinished stages are cancelled, contract follows.

    A completed workflow has neither (every stage settled), so only rejection and cancellation
    look for them.
    """
    if outcome != InstanceStatus.COMPLETED:
        still_pending = list(instance.approvals.filter(status=ApprovalStatus.PENDING))
        _close_rows(still_pending, ApprovalStatus.CANCELLED, changes, "approval_cancelled")
        instance.stages.filter(status__in=[StageStatus.WAITING, StageStatus.PENDING]).update(
            status=StageStatus.CANCELLED, completed_at=now
        )
    instance.status = outcome
    instance.completed_at = now
    instance.current_sequence = None
    instance.save(update_fields=["status", "completed_at", "current_sequence"])
    contract_status = {
        InstanceStatus.COMPLETED: ContractStatus.APPROVED,
        InstanceStatus.REJECTED: ContractStatus.REJECTED,
        InstanceStatus.CANCELLED: ContractStatus.CANCELLED,
    }[outcome]
    changes.record(
        f"workflow_{outcome}",
        instance,
        status=(InstanceStatus.ACTIVE, outcome),
        contract_status=(contract.status, contract_status),
    )
    contract.status = contract_status
    contract.save(update_fields=["status", "updated_at"])


# --- delegate --------------------------------------------------------------------------------


def _delegate(instance, contract, approval, actor, delegate_to, comments, changes, now) -> None:
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
    approval.status = ApprovalStatus.DELEGATED
    approval.delegated_to = delegate_to
    approval.decided_by = actor
    approval.decided_at = now
    approval.comments = comments
    approval.save(
        update_fields=["status", "delegated_to", "decided_by", "decided_at", "comments", "metadata"]
    )
    successor = WorkflowStageApproval.objects.create(
        tenant_id=instance.tenant_id,
        stage=approval.stage,
        instance=instance,
        contract=contract,
        approver=approval.approver,
        role=approval.role,
        assigned_to=delegate_to,
        due_at=approval.due_at,
        # The SLA state goes with the row: no second reminder, no second breach.
        remind_at=approval.remind_at,
        reminded_at=approval.reminded_at,
        overdue_at=approval.overdue_at,
        delegated_from=approval,
        created_at=now,
    )
    changes.record(
        "approval_delegated",
        approval,
        status=(ApprovalStatus.PENDING, ApprovalStatus.DELEGATED),
        delegated_to=(None, str(delegate_to.pk)),
        new_approval=(None, str(successor.pk)),
    )
    successor.contract = contract
    changes.emit(signals.approval_delegated, approval=successor, previous=approval)
    changes.emit(signals.approval_assigned, approvals=[successor])


# --- cancel ----------------------------------------------------------------------------------


@transaction.atomic
def workflow_cancel(*, tenant, contract_id, actor: User, reason: str = "") -> WorkflowInstance:
    """Cancel the active workflow: the contract's creator or a tenant admin (403 otherwise)."""
    contract = (
        Contract.objects.for_tenant(tenant)
        .defer("text", "clause_findings")
        .filter(pk=contract_id)
        .first()
    )
    if contract is None:
        raise NotFound()
    if not (actor.is_tenant_admin or contract.created_by_id == actor.pk):
        raise PermissionDenied("Only the contract's creator or a tenant admin may cancel.")
    instance = (
        WorkflowInstance.objects.select_for_update()
        .filter(contract=contract, status=InstanceStatus.ACTIVE)
        .first()
    )
    if instance is None:
        raise Conflict("This contract has no active workflow.", code="workflow_not_active")
    changes = _Changes(instance=instance, actor=actor)
    _finish(instance, contract, changes, InstanceStatus.CANCELLED, timezone.now())
    if reason:
        changes.audit[-1]["changes"]["reason"] = [None, reason]
    changes.emit_outcome()
    changes.flush()
    return instance
