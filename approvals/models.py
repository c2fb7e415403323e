"""Workflow execution: instances, their stages and the approval rows approvers act on."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenancy.scoping import TenantOwnedModel
from workflows.models import ApprovalType


class InstanceStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


class StageStatus(models.TextChoices):
    WAITING = "waiting", "Waiting"
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    DELEGATED = "delegated", "Delegated"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"


class WorkflowInstance(TenantOwnedModel):
    contract = models.ForeignKey(
        "contracts.Contract", on_delete=models.CASCADE, related_name="workflow_instances"
    )
    definition = models.ForeignKey(
        "workflows.WorkflowDefinition", on_delete=models.PROTECT, related_name="instances"
    )
    definition_version = models.ForeignKey(
        "workflows.WorkflowDefinitionVersion", on_delete=models.PROTECT, related_name="instances"
    )
    status = models.CharField(
        max_length=12, choices=InstanceStatus.choices, default=InstanceStatus.ACTIVE
    )
    current_sequence = models.PositiveSmallIntegerField(null=True, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            # The backstop for racing starts: at most one active instance per contract.
            models.UniqueConstraint(
                fields=["contract"],
                condition=Q(status="active"),
                name="workflowinstance_one_active_per_contract",
            ),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "status", "-started_at"], name="instance_tenant_status_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"Workflow {self.pk} on {self.contract_id} ({self.status})"


class WorkflowStage(TenantOwnedModel):
    """A stage of one instance, copied from the definition version when the instance starts."""

    instance = models.ForeignKey(WorkflowInstance, on_delete=models.CASCADE, related_name="stages")
    sequence = models.PositiveSmallIntegerField()
    stage_name = models.CharField(max_length=100)
    approval_type = models.CharField(max_length=10, choices=ApprovalType.choices)
    min_approvals = models.PositiveSmallIntegerField(null=True, blank=True)
    approvers = ArrayField(models.CharField(max_length=60))
    sla_hours = models.PositiveIntegerField(null=True, blank=True)
    is_required = models.BooleanField(default=True)
    status = models.CharField(
        max_length=10, choices=StageStatus.choices, default=StageStatus.WAITING
    )
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["sequence", "stage_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["instance", "stage_name"], name="stage_instance_name_uq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sequence}. {self.stage_name} ({self.status})"


class WorkflowStageApproval(TenantOwnedModel):
    """One approver entry of a stage: a role (any unexpired holder may act) or a named user."""

    stage = models.ForeignKey(WorkflowStage, on_delete=models.CASCADE, related_name="approvals")
    instance = models.ForeignKey(
        WorkflowInstance, on_delete=models.CASCADE, related_name="approvals"
    )
    contract = models.ForeignKey(
        "contracts.Contract", on_delete=models.CASCADE, related_name="approvals"
    )
    approver = models.CharField(
        max_length=60, help_text='The stage entry: a role slug or "user:<uuid>".'
    )
    role = models.SlugField(max_length=50, blank=True, default="")
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_approvals",
        help_text="Set for named approvers and delegates; empty for role approvals.",
    )
    status = models.CharField(
        max_length=10, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING
    )
    due_at = models.DateTimeField(null=True, blank=True)
    delegated_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    delegated_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="decided_approvals",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    comments = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["tenant", "role"],
                condition=Q(status="pending"),
                name="approval_pending_role_idx",
            ),
            models.Index(
                fields=["tenant", "assigned_to"],
                condition=Q(status="pending"),
                name="approval_pending_user_idx",
            ),
            models.Index(fields=["tenant", "decided_by"], name="approval_decided_by_idx"),
            models.Index(
                fields=["due_at"], condition=Q(status="pending"), name="approval_pending_due_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.approver} on {self.stage_id} ({self.status})"

    def is_overdue(self, now=None) -> bool:
        """Pending past its due date (decided rows are never overdue)."""
        if self.status != ApprovalStatus.PENDING or self.due_at is None:
            return False
        return (now or timezone.now()) > self.due_at
