"""Moving pending approvals to another person: a manager's reassignment, and out-of-office
windows handing the away user's personal rows to their cover.

Both take the contracts' row locks first, like every writer of a contract's workflow
(``approvals.orchestrator``), so a move never races a decision on the same row: whichever
comes second sees the other's result (a decided row is no longer pending and is not moved; a
moved row is no longer the away user's to decide). The due date and SLA state stay with the row.
Who a row may go to is ``tenancy``'s rule (``tenancy.out_of_office``).
"""

from collections import defaultdict
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import NotFound, ValidationError

from approvals import signals
from approvals.models import ApprovalStatus, WorkflowInstance, WorkflowStageApproval
from audit.services import audit_record_many
from config.exceptions import Conflict
from contracts.models import Contract
from tenancy import out_of_office
from tenancy.models import User

DECIDED = (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED)
REASON_MAX_LENGTH = 1000


def _lock_contracts(contract_ids) -> dict:
    """The contracts locked in id order (the order every multi-contract writer uses)."""
    return {
        contract.pk: contract
        for contract in Contract.objects.select_for_update(of=("self",))
        .defer("text", "clause_findings")
        .filter(pk__in=set(contract_ids))
        .order_by("pk")
    }


def _deciders_by_instance(instance_ids) -> dict:
    """``{instance id: {user ids who decided a live row}}`` for distinct-approver workflows."""
    deciders = defaultdict(set)
    rows = WorkflowStageApproval.objects.filter(
        instance_id__in=set(instance_ids),
        instance__distinct_approvers=True,
        status__in=DECIDED,
    ).values_list("instance_id", "decided_by_id")
    for instance_id, user_id in rows:
        deciders[instance_id].add(user_id)
    return deciders


def _announce(moved: list, actor, audit_rows: list) -> None:
    """One audit INSERT, and the new assignees told (``approval_assigned``) per instance."""
    audit_record_many(audit_rows)
    by_instance = defaultdict(list)
    for row in moved:
        by_instance[row.instance_id].append(row)
    signals.dispatch(
        (
            signals.approval_assigned,
            WorkflowInstance,
            {"instance": rows[0].instance, "actor": actor, "approvals": rows},
        )
        for rows in by_instance.values()
    )


def _audit_row(row, actor, previous_id, reason: str) -> dict:
    changes = {
        "assigned_to": [str(previous_id) if previous_id else None, str(row.assigned_to_id)],
        "reason": [None, reason],
    }
    if row.on_behalf_of_id:
        changes["on_behalf_of"] = [None, str(row.on_behalf_of_id)]
    return {
        "action": "approval_reassigned",
        "tenant": row.tenant_id,
        "actor": actor,
        "resource": row,
        "changes": changes,
    }


# --- reassignment --------------------------------------------------------------------------------


@transaction.atomic
def approval_reassign(*, tenant, approval_id, assign_to_id, reason: str, actor: User):
    """Give a pending row to another person (``workflows.manage``; the caller checks it).

    400 when the person could not decide it (not an active member, the contract's creator, the
    current assignee, or someone who already decided a row of a distinct-approver workflow);
    409 unless the row is pending. Someone away gets it through their cover.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say why the approval is reassigned."]})
    if len(reason) > REASON_MAX_LENGTH:
        raise ValidationError({"reason": [f"At most {REASON_MAX_LENGTH} characters."]})
    found = (
        WorkflowStageApproval.objects.for_tenant(tenant)
        .filter(pk=approval_id)
        .values_list("contract_id", flat=True)
        .first()
    )
    if found is None:
        raise NotFound()
    contract = _lock_contracts([found])[found]
    row = (
        WorkflowStageApproval.objects.select_related("stage", "instance")
        .filter(pk=approval_id)
        .get()
    )
    row.contract = row.instance.contract = contract
    if row.status != ApprovalStatus.PENDING:
        raise Conflict(f"This approval is {row.status}, not pending.", code="approval_not_pending")
    person = User.objects.filter(tenant_id=row.tenant_id, pk=assign_to_id, is_active=True).first()
    if person is None:
        raise ValidationError({"assign_to": ["Unknown or inactive user."]})
    if person.pk == contract.created_by_id:
        raise ValidationError(
            {"assign_to": ["The contract's creator may not approve their own contract."]}
        )
    decided = _deciders_by_instance([row.instance_id]).get(row.instance_id, set())
    if person.pk in decided:
        raise ValidationError(
            {
                "assign_to": [
                    "This person already decided an approval of this workflow; its definition "
                    "requires a different person for each approval."
                ]
            }
        )
    target = out_of_office.personal_assignees(
        tenant_id=row.tenant_id,
        user_ids=[person.pk],
        creator_id=contract.created_by_id,
        at=timezone.now(),
        decided_ids=decided,
    )[person.pk]
    if target.user_id == row.assigned_to_id:
        raise ValidationError({"assign_to": ["The approval is already assigned to this person."]})
    previous = row.assigned_to_id
    row.assigned_to_id, row.on_behalf_of_id = target.user_id, target.on_behalf_of
    row.save(update_fields=["assigned_to", "on_behalf_of"])
    _announce([row], actor, [_audit_row(row, actor, previous, reason)])
    return row


# --- out-of-office windows -------------------------------------------------------------------


def covers_apply_due(*, tenant_ids=None, now: datetime | None = None) -> int:
    """Move the pending personal rows of everyone whose window has started to their cover.

    Idempotent and safe to run concurrently (the windows are locked and marked applied in the
    same transaction). A row stays put when the cover may not decide it (their own contract, or
    a distinct-approver workflow they already decided on). Returns how many rows moved.
    """
    now = now or timezone.now()
    if not out_of_office.windows_due_exist(tenant_ids=tenant_ids, now=now):
        return 0  # the usual case: one indexed query, no transaction
    with transaction.atomic():
        windows = out_of_office.windows_to_apply(tenant_ids=tenant_ids, now=now)
        if not windows:
            return 0
        cover_of = {window.user_id: window for window in windows}
        candidates = list(
            WorkflowStageApproval.objects.filter(
                status=ApprovalStatus.PENDING, assigned_to_id__in=list(cover_of)
            ).values_list("contract_id", flat=True)
        )
        contracts = _lock_contracts(candidates)
        rows = list(
            WorkflowStageApproval.objects.select_related("stage", "instance")
            .filter(status=ApprovalStatus.PENDING, assigned_to_id__in=list(cover_of))
            .order_by("created_at", "id")
        )
        deciders = _deciders_by_instance(row.instance_id for row in rows)
        moved, audit_rows = [], []
        for row in rows:
            window = cover_of[row.assigned_to_id]
            contract = contracts.get(row.contract_id)
            if contract is None or window.cover_id in (
                contract.created_by_id,
                *deciders.get(row.instance_id, ()),
            ):
                continue
            row.contract = row.instance.contract = contract
            row.assigned_to_id, row.on_behalf_of_id = window.cover_id, window.user_id
            moved.append(row)
            audit_rows.append(_audit_row(row, None, window.user_id, "out_of_office"))
        if moved:
            WorkflowStageApproval.objects.bulk_update(moved, ["assigned_to", "on_behalf_of"])
            _announce(moved, None, audit_rows)
        out_of_office.windows_mark_applied(windows=windows, now=now)
        return len(moved)


def covers_apply_for_reader(*, tenant) -> None:
    """Before a list of approvals is read: a window of the tenant that has started moves its
    rows now, unless the SLA job did already."""
    covers_apply_due(tenant_ids=[tenant.pk])
