"""Listeners on the orchestrator's domain signals and on a comment's, connected in ``apps.ready``.

The orchestrator's run inside the decision's transaction, isolated by
``approvals.signals.dispatch``: a rolled-back decision takes its notifications with it, and a
listener that raises is logged and rolled back alone, never the decision. A comment's
(``contracts.signals.comment_added``, a plain Django signal) runs inside the comment's
transaction: a rolled-back comment notifies nobody, and a failure rolls the comment back. They
only write rows (in-app notifications and queued deliveries); email and webhooks go out later
from committed rows (``deliver_notifications``).

Fan-out is set-based: ``notify_many`` resolves the approvers of every approval row of a
transaction's signals (``tenancy.eligibility``) and writes all their notifications in one
statement, however many users hold the roles.

Of the approvals app this module knows only ``approvals.signals`` (the events, and the statuses
their rows carry); approvals imports nothing of notifications (the SLA check reaches its writer
through the port ``core.fanout``).
"""

import logging
from collections import defaultdict

from approvals import signals
from approvals.signals import ApprovalStatus
from contracts.signals import comment_added
from notifications.models import NotificationType, Priority
from notifications.services import Message, notify_many
from tenancy.approvers import admin_ids
from tenancy.eligibility import Approvable

logger = logging.getLogger(__name__)


# --- payloads and wording ----------------------------------------------------------------------


def _contract(instance, approvals=()):
    """The instance's contract, from an object already loaded when there is one."""
    for approval in approvals:
        if type(approval).contract.is_cached(approval):
            return approval.contract
    return instance.contract


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def _name(user) -> str:
    if user is None:
        return "The system"
    return user.full_name or user.email


def _base_payload(instance, contract) -> dict:
    return {
        "contract_id": str(contract.pk),
        "contract_title": contract.title,
        "instance_id": str(instance.pk),
    }


def _approval_payload(instance, contract, approval) -> dict:
    return {
        **_base_payload(instance, contract),
        "approval_id": str(approval.pk),
        "stage_name": approval.stage.stage_name,
        "due_at": _iso(approval.due_at),
    }


def _due_text(approval) -> str:
    if approval.due_at is None:
        return ""
    return f", due {approval.due_at:%Y-%m-%d %H:%M} UTC"


# --- receivers ---------------------------------------------------------------------------------


def on_approval_assigned(sender, instance, actor=None, approvals=(), **kwargs) -> list[Message]:
    """Every eligible approver of each new pending row: the role's active holders, the named
    user or the delegate, never the contract's creator (who may not approve their own)."""
    approvals = [row for row in approvals if row.status == ApprovalStatus.PENDING]
    if not approvals:
        return []
    contract = _contract(instance, approvals)
    messages = []
    for approval in approvals:
        stage = approval.stage.stage_name
        delegated = approval.delegated_from_id is not None
        text = (
            f'"{stage}" of contract "{contract.title}" was delegated to you for a decision'
            if delegated
            else f'"{stage}" of contract "{contract.title}" awaits your decision'
        )
        messages.append(
            Message(
                notification_type=NotificationType.APPROVAL_ASSIGNED,
                title=f"Approval needed: {contract.title} ({stage})",
                message=f"{text}{_due_text(approval)}.",
                payload=_approval_payload(instance, contract, approval),
                approvers_of=Approvable(
                    approval.role, approval.assigned_to_id, contract.created_by_id
                ),
            )
        )
    return messages


def on_approval_decided(sender, instance, actor=None, approval=None, **kwargs) -> list[Message]:
    """The contract's creator hears of each decision, with the stage and the comments."""
    contract = _contract(instance, [approval])
    if contract.created_by_id is None:
        return []
    decision = "approved" if approval.status == ApprovalStatus.APPROVED else "rejected"
    stage = approval.stage.stage_name
    comments = f' Comments: "{approval.comments}"' if approval.comments else ""
    return [
        Message(
            notification_type=NotificationType.APPROVAL_DECIDED,
            title=f"{stage} {decision}: {contract.title}",
            message=(
                f'{_name(actor)} {decision} "{stage}" of contract "{contract.title}".{comments}'
            ),
            payload={
                **_approval_payload(instance, contract, approval),
                "decision": decision,
                "decided_by": str(actor.pk) if actor else None,
                "decided_at": _iso(approval.decided_at),
                "comments": approval.comments,
            },
            recipient_ids=[contract.created_by_id],
        )
    ]


def on_approval_delegated(
    sender, instance, actor=None, approval=None, previous=None, **kwargs
) -> list[Message]:
    """The delegate hears who handed them the approval (the assignment notice comes too)."""
    if approval is None or approval.assigned_to_id is None:
        return []
    contract = _contract(instance, [approval])
    stage = approval.stage.stage_name
    comments = previous.comments if previous is not None else ""
    note = f' Note: "{comments}"' if comments else ""
    return [
        Message(
            notification_type=NotificationType.APPROVAL_DELEGATED,
            title=f"Delegated to you: {contract.title} ({stage})",
            message=(
                f'{_name(actor)} delegated their "{stage}" approval of contract '
                f'"{contract.title}" to you{_due_text(approval)}.{note}'
            ),
            payload={
                **_approval_payload(instance, contract, approval),
                "delegated_by": str(actor.pk) if actor else None,
                "delegated_from": str(previous.pk) if previous is not None else None,
                "comments": comments,
            },
            recipient_ids=[approval.assigned_to_id],
        )
    ]


def on_approver_unresolved(sender, instance, actor=None, approval=None, **kwargs) -> list[Message]:
    """Every tenant admin (but the contract's creator) hears of an approver entry nobody could
    act on, and whom it went to; the assignee also gets the usual assignment notice."""
    contract = _contract(instance, [approval])
    stage = approval.stage.stage_name
    return [
        Message(
            notification_type=NotificationType.APPROVER_UNRESOLVED,
            title=f"No approver for {contract.title} ({stage})",
            message=(
                f'Nobody could act on "{approval.approver}" in "{stage}" of contract '
                f'"{contract.title}"; it was assigned to a tenant admin. Check the workflow\'s '
                "approvers."
            ),
            payload={
                **_approval_payload(instance, contract, approval),
                "approver": approval.approver,
                "assigned_to": _iso_id(approval.assigned_to_id),
            },
            recipient_ids=admin_ids(
                tenant_id=instance.tenant_id, creator_id=contract.created_by_id
            ),
            priority=Priority.HIGH,
        )
    ]


def _iso_id(value) -> str | None:
    return str(value) if value is not None else None


def _notify_creator_of_outcome(
    instance, contract, actor, notification_type, title: str, message: str, **extra
) -> list[Message]:
    if contract.created_by_id is None:
        return []
    return [
        Message(
            notification_type=notification_type,
            title=title,
            message=message,
            payload={
                **_base_payload(instance, contract),
                "status": instance.status,
                "completed_at": _iso(instance.completed_at),
                "actor_id": str(actor.pk) if actor else None,
                **extra,
            },
            recipient_ids=[contract.created_by_id],
            priority=Priority.HIGH,
        )
    ]


def on_workflow_completed(sender, instance, actor=None, **kwargs) -> list[Message]:
    contract = _contract(instance)
    return _notify_creator_of_outcome(
        instance,
        contract,
        actor,
        NotificationType.WORKFLOW_COMPLETED,
        f"Contract approved: {contract.title}",
        f'Every stage approved contract "{contract.title}"; it is now approved.',
    )


def on_workflow_rejected(sender, instance, actor=None, **kwargs) -> list[Message]:
    """Says where it was rejected and why (one query for the rejecting decision)."""
    contract = _contract(instance)
    rejection = (
        instance.approvals.filter(status=ApprovalStatus.REJECTED)
        .select_related("stage")
        .order_by("-decided_at")
        .first()
    )
    stage = rejection.stage.stage_name if rejection else None
    comments = rejection.comments if rejection else ""
    at_stage = f' at "{stage}"' if stage else ""
    note = f' Comments: "{comments}"' if comments else ""
    return _notify_creator_of_outcome(
        instance,
        contract,
        actor,
        NotificationType.WORKFLOW_REJECTED,
        f"Contract rejected: {contract.title}",
        f'{_name(actor)} rejected contract "{contract.title}"{at_stage}; it is now rejected.{note}',
        stage_name=stage,
        comments=comments,
    )


def on_workflow_cancelled(sender, instance, actor=None, **kwargs) -> list[Message]:
    contract = _contract(instance)
    return _notify_creator_of_outcome(
        instance,
        contract,
        actor,
        NotificationType.WORKFLOW_CANCELLED,
        f"Workflow cancelled: {contract.title}",
        f'{_name(actor)} cancelled the approval workflow of contract "{contract.title}"; '
        "it is now cancelled.",
    )


def on_changes_requested(
    sender, instance, actor=None, approval=None, comments="", **kwargs
) -> list[Message]:
    """The contract's creator hears what an approver wants changed (high priority)."""
    contract = _contract(instance, [approval])
    if contract.created_by_id is None:
        return []
    stage = approval.stage.stage_name
    return [
        Message(
            notification_type=NotificationType.CHANGES_REQUESTED,
            title=f"Changes requested: {contract.title} ({stage})",
            message=(
                f'{_name(actor)} sent contract "{contract.title}" back for changes at "{stage}": '
                f'"{comments}" Edit it and resubmit it to continue the review.'
            ),
            payload={
                **_approval_payload(instance, contract, approval),
                "requested_by": str(actor.pk) if actor else None,
                "comments": comments,
                "revision": contract.revision,
            },
            recipient_ids=[contract.created_by_id],
            priority=Priority.HIGH,
        )
    ]


def on_approvals_reset(
    sender, instance, actor=None, approvals=(), reason="changed", **kwargs
) -> list[Message]:
    """Each person whose decision no longer counts hears why, once per stage they decided."""
    contract = _contract(instance)
    why = (
        "it now follows another workflow"
        if reason == "rerouted"
        else f"it changed (revision {contract.revision})"
    )
    messages = []
    for approval in approvals:
        stage = approval.stage.stage_name
        messages.append(
            Message(
                notification_type=NotificationType.APPROVAL_RESET,
                title=f"Decision reset: {contract.title} ({stage})",
                message=(
                    f'Your decision on "{stage}" of contract "{contract.title}" no longer counts: '
                    f"{why}."
                ),
                payload={
                    **_approval_payload(instance, contract, approval),
                    "reason": reason,
                    "revision": contract.revision,
                    "decided_revision": approval.revision,
                },
                recipient_ids=[approval.decided_by_id],
            )
        )
    return messages


# --- a contract's discussion thread ------------------------------------------------------------

EXCERPT_LENGTH = 280


def on_comment_added(sender, comment, contract, author, **kwargs) -> None:
    """Mentioned members (but the author) are told; the tenant's webhooks get every comment."""
    name = _name(author)
    body = comment.body
    excerpt = body if len(body) <= EXCERPT_LENGTH else body[: EXCERPT_LENGTH - 1] + "…"
    payload = {
        "contract_id": str(contract.pk),
        "contract_title": contract.title,
        "comment_id": str(comment.pk),
        "author": str(author.pk),
        "mentions": [str(user_id) for user_id in comment.mentions],
        "excerpt": excerpt,
    }
    notify_many(
        tenant_id=contract.tenant_id,
        messages=[
            Message(
                notification_type=NotificationType.COMMENT_MENTION,
                title=f"{name} mentioned you: {contract.title}",
                message=f'{name} mentioned you on contract "{contract.title}": "{excerpt}"',
                payload=payload,
                recipient_ids=[user_id for user_id in comment.mentions if user_id != author.pk],
            ),
            # Webhooks only: nobody's inbox gets every comment.
            Message(
                notification_type=NotificationType.COMMENT_ADDED,
                title=f"Comment on {contract.title}",
                message=f'{name} commented on contract "{contract.title}": "{excerpt}"',
                payload=payload,
            ),
        ],
    )


# --- wiring ------------------------------------------------------------------------------------

MESSAGE_BUILDERS = {
    signals.approval_assigned: on_approval_assigned,
    signals.approval_decided: on_approval_decided,
    signals.approval_delegated: on_approval_delegated,
    signals.workflow_completed: on_workflow_completed,
    signals.workflow_rejected: on_workflow_rejected,
    signals.workflow_cancelled: on_workflow_cancelled,
    signals.changes_requested: on_changes_requested,
    signals.approvals_reset: on_approvals_reset,
    signals.approver_unresolved: on_approver_unresolved,
}


def on_workflow_events(sends) -> None:
    """Every notification of one transaction's signals, written by one ``notify_many``.

    A decision that advances a stage announces the decision and the new assignments; both go
    out in the same two statements.
    """
    messages_by_tenant: dict = defaultdict(list)
    for signal, sender, kwargs in sends:
        build = MESSAGE_BUILDERS.get(signal)
        if build is not None:
            messages_by_tenant[kwargs["instance"].tenant_id] += build(sender, **kwargs)
    for tenant_id, messages in messages_by_tenant.items():
        notify_many(tenant_id=tenant_id, messages=messages)


def connect() -> None:
    """Idempotent (each receiver has a dispatch uid)."""
    signals.connect_batch(on_workflow_events, dispatch_uid="notifications.on_workflow_events")
    comment_added.connect(on_comment_added, dispatch_uid="notifications.on_comment_added")
