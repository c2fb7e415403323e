"""Reads about workflow instances and approvals, tenant-scoped, with their joins done here."""

from django.db.models import Prefetch, Q, QuerySet

from approvals.models import (
    ApprovalStatus,
    WorkflowInstance,
    WorkflowStage,
    WorkflowStageApproval,
)
from tenancy.selectors import user_role_slugs


def instances_newest_first() -> Prefetch:
    """Prefetch for a contract's instances (the first is its active or last workflow)."""
    return Prefetch(
        "workflow_instances",
        queryset=WorkflowInstance.objects.select_related("definition_version").order_by(
            "-started_at"
        ),
        to_attr="instances_newest_first",
    )


def workflow_instance_latest(*, tenant, contract_id) -> WorkflowInstance | None:
    """The contract's active or most recent instance, with stages and approvals (3 queries)."""
    return (
        WorkflowInstance.objects.for_tenant(tenant)
        .filter(contract_id=contract_id)
        .select_related("definition_version")
        .prefetch_related(
            Prefetch(
                "stages",
                queryset=WorkflowStage.objects.order_by("sequence", "stage_name").prefetch_related(
                    Prefetch(
                        "approvals",
                        queryset=WorkflowStageApproval.objects.order_by("created_at", "id"),
                    )
                ),
            )
        )
        .order_by("-started_at")
        .first()
    )


def _actionable_q(user, roles) -> Q:
    return (Q(assigned_to=user) | Q(assigned_to__isnull=True, role__in=roles)) & ~Q(
        contract__created_by=user
    )


def approval_list_for_user(*, user) -> QuerySet[WorkflowStageApproval]:
    """Approvals the user may act on (pending, theirs or their roles') or has acted on."""
    roles = user_role_slugs(user=user)
    visible = (Q(status=ApprovalStatus.PENDING) & _actionable_q(user, roles)) | Q(decided_by=user)
    return (
        WorkflowStageApproval.objects.for_tenant(user.tenant_id)
        .filter(visible)
        .select_related("stage", "contract")
        .order_by("due_at", "created_at", "id")
    )


def approval_pending_for_user(*, user) -> QuerySet[WorkflowStageApproval]:
    roles = user_role_slugs(user=user)
    return (
        WorkflowStageApproval.objects.for_tenant(user.tenant_id)
        .filter(Q(status=ApprovalStatus.PENDING) & _actionable_q(user, roles))
        .select_related("stage", "contract")
        .order_by("due_at", "created_at", "id")
    )
