"""The SLA state an approval records in ``metadata["sla"]``: a ``pre_save`` hook on approvals.

Connected in ``ApprovalsConfig.ready``. The SLA check writes the same value set-based
(``approvals.sla.check._sla_metadata``), since bulk writes bypass the hook.
"""

from django.db.models import F, Func, JSONField, Value
from django.db.models.functions import Cast
from django.db.models.signals import pre_save
from django.utils import timezone

from approvals.models import ApprovalStatus, WorkflowStageApproval


class _JSONBMerge(Func):
    """``metadata || patch``: sets the patch's keys, keeps the others."""

    arg_joiner = " || "
    template = "(%(expressions)s)"
    output_field = JSONField()


def sla_state(approval: WorkflowStageApproval, now) -> dict:
    """Overdue: a pending row past its due date, or a decided row decided after it."""
    if approval.decided_at is not None and approval.status != ApprovalStatus.PENDING:
        overdue = approval.decided_at > approval.due_at
    else:
        overdue = now > approval.due_at
    return {"overdue": overdue, "checked_at": now.isoformat()}


def record_sla_state(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    """``pre_save`` on approvals: ``metadata["sla"] = {"overdue", "checked_at"}`` when due.

    A save limited by ``update_fields`` that leaves out ``metadata`` would drop the value, so the
    key is then written by one UPDATE merging it into the stored JSON (other keys untouched).
    Bulk writes (``bulk_create``, ``QuerySet.update``) bypass this hook by design: the SLA check
    updates overdue rows explicitly.
    """
    if raw or instance.due_at is None:
        return
    state = sla_state(instance, timezone.now())
    metadata = dict(instance.metadata) if isinstance(instance.metadata, dict) else {}
    metadata["sla"] = state
    instance.metadata = metadata
    if update_fields is not None and "metadata" not in update_fields and not instance._state.adding:
        WorkflowStageApproval.objects.filter(pk=instance.pk).update(
            metadata=_JSONBMerge(
                F("metadata"), Cast(Value({"sla": state}, JSONField()), JSONField())
            )
        )


def connect() -> None:
    """Idempotent (the hook has a dispatch uid)."""
    pre_save.connect(
        record_sla_state,
        sender=WorkflowStageApproval,
        dispatch_uid="approvals.sla.record_sla_state",
    )
