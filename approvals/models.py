"""Workflow execution: instances, their stages and the approval rows approvers act on."""

from datetime import time

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from tenancy.scoping import TenantOwnedModel, tenant_key
from workflows.models import ApprovalType, reset_on_any_change


class InstanceStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
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
    SUPERSEDED = "superseded", "Superseded"


# An instance in one of these is the contract's running workflow (at most one per contract).
OPEN_INSTANCE_STATUSES = (InstanceStatus.ACTIVE, InstanceStatus.CHANGES_REQUESTED)


class WorkflowInstance(TenantOwnedModel):
    tenant = tenant_key(db_index=False)  # instance_tenant_status_idx leads with it
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
        max_length=20, choices=InstanceStatus.choices, default=InstanceStatus.ACTIVE
    )
    distinct_approvers = models.BooleanField(
        default=True, help_text="From the definition version: one person decides at most one row."
    )
    # While ``changes_requested``: who sent it back, from which stage, on which revision, when.
    # Mostly empty: their indexes are partial (Meta.indexes).
    changes_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    changes_requested_stage = models.ForeignKey(
        "WorkflowStage",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    changes_requested_revision = models.PositiveIntegerField(null=True, blank=True)
    changes_requested_at = models.DateTimeField(null=True, blank=True)
    changes_requested_comments = models.TextField(blank=True, default="")
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
                condition=Q(status__in=OPEN_INSTANCE_STATUSES),
                name="workflowinstance_one_open_per_contract",
            ),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "status", "-started_at"], name="instance_tenant_status_idx"
            ),
            models.Index(
                fields=["changes_requested_by"],
                condition=Q(changes_requested_by__isnull=False),
                name="instance_changes_by_idx",
            ),
            models.Index(
                fields=["changes_requested_stage"],
                condition=Q(changes_requested_stage__isnull=False),
                name="instance_changes_stage_idx",
            ),
        ]

    def __str__(self) -> str:
        # Human titles (the admin's headings, links and pickers): the admin selects the relations.
        return f"{self.definition.name} — {self.contract.title}"


class WorkflowStage(TenantOwnedModel):
    """A stage of one instance, copied from the definition version when the instance starts."""

    # Indexed by stage_instance_name_uq (instance, stage_name).
    instance = models.ForeignKey(
        WorkflowInstance, on_delete=models.CASCADE, related_name="stages", db_index=False
    )
    sequence = models.PositiveSmallIntegerField()
    stage_name = models.CharField(max_length=100)
    approval_type = models.CharField(max_length=10, choices=ApprovalType.choices)
    min_approvals = models.PositiveSmallIntegerField(null=True, blank=True)
    approvers = ArrayField(models.CharField(max_length=60))
    sla_hours = models.PositiveIntegerField(null=True, blank=True)
    is_required = models.BooleanField(default=True)
    reset_on_change = models.JSONField(
        default=reset_on_any_change,
        help_text='"any", "never" or a list of business fields (workflows.stages).',
    )
    status = models.CharField(
        max_length=10, choices=StageStatus.choices, default=StageStatus.WAITING
    )
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    sla_rule = models.ForeignKey(
        "SLARule",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The most specific active SLA rule when the stage started (its escalation).",
    )

    class Meta:
        ordering = ["sequence", "stage_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["instance", "stage_name"], name="stage_instance_name_uq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stage_name} — {self.instance.contract.title}"


class WorkflowStageApproval(TenantOwnedModel):
    """One approver entry of a stage: a role (any unexpired holder may act) or a named user."""

    tenant = tenant_key(db_index=False)  # approval_decided_by_idx leads with it
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
    # Read with the tenant, on pending rows only: approval_pending_role_idx (no index of its own).
    role = models.SlugField(max_length=50, blank=True, default="", db_index=False)
    # The user references below are mostly empty (a role approval has no assignee, a pending one
    # no decider): their indexes are partial, on the rows that have one (see Meta.indexes).
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_approvals",
        help_text="Set for named approvers and delegates; empty for role approvals.",
        db_index=False,
    )
    status = models.CharField(
        max_length=10, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING
    )
    due_at = models.DateTimeField(null=True, blank=True)
    remind_at = models.DateTimeField(
        null=True, blank=True, help_text="When the tenant's reminder share of the SLA has elapsed."
    )
    reminded_at = models.DateTimeField(null=True, blank=True)
    overdue_at = models.DateTimeField(
        null=True, blank=True, help_text="Set by the breach check when it recorded the breach."
    )
    delegated_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    delegated_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        help_text="The person this row was meant for, when it went to their out-of-office cover.",
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="decided_approvals",
        db_index=False,
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    comments = models.TextField(blank=True, default="")
    revision = models.PositiveIntegerField(
        null=True, blank=True, help_text="The contract revision the decision was made on."
    )
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
            # The breach check's range scan (due_at < now). Deliberately no SLA marker in any
            # index: marking a breach (overdue_at, metadata) then changes no indexed column, so
            # with the table's fillfactor (migration 0002) it is a HOT update that writes no
            # index entry, which is most of what marking 100,000 breaches would cost.
            models.Index(
                fields=["due_at"], condition=Q(status="pending"), name="approval_pending_due_idx"
            ),
            # The reminder scan: pending rows not yet reminded whose reminder time has come and
            # whose due date has not (both index conditions: overdue rows are skipped in the
            # index, without a visit to the table).
            models.Index(
                fields=["remind_at", "due_at"],
                condition=Q(status="pending", reminded_at__isnull=True),
                name="approval_pending_remind_idx",
            ),
            # The user references, for the lookups by one user (deleting a user: Django's PROTECT
            # check, the database's foreign key check) and the self-reference's SET NULL. Each is
            # an equality, which implies IS NOT NULL: the rows without a reference, most of them,
            # have no entry. The breach check's overdue mark rewrites a row's index entries
            # whenever the page is full, and a pending role approval then writes none here.
            models.Index(
                fields=["assigned_to"],
                condition=Q(assigned_to__isnull=False),
                name="approval_assigned_to_idx",
            ),
            models.Index(
                fields=["delegated_to"],
                condition=Q(delegated_to__isnull=False),
                name="approval_delegated_to_idx",
            ),
            models.Index(
                fields=["delegated_from"],
                condition=Q(delegated_from__isnull=False),
                name="approval_delegated_from_idx",
            ),
            models.Index(
                fields=["decided_by"],
                condition=Q(decided_by__isnull=False),
                name="approval_decider_idx",
            ),
            models.Index(
                fields=["on_behalf_of"],
                condition=Q(on_behalf_of__isnull=False),
                name="approval_on_behalf_of_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stage.stage_name} — {self.contract.title}: {self.approver_label}"

    @property
    def approver_label(self) -> str:
        """Who the row waits for or was decided by: a person's e-mail or "any <role>"."""
        if self.assigned_to_id is not None:
            return self.assigned_to.email
        return f"any {self.role}" if self.role else self.approver

    def is_overdue(self, now=None) -> bool:
        """Pending and past its due date, or marked by the breach check (decided: never).

        Strictly after: at the due instant itself the approval is still on time, exactly as the
        breach check sees it (``due_at < now``).
        """
        if self.status != ApprovalStatus.PENDING:
            return False
        if self.overdue_at is not None:
            return True
        return self.due_at is not None and (now or timezone.now()) > self.due_at


# --- SLA configuration and breaches -------------------------------------------------------------

MAX_SLA_HOURS = 8760  # a year: larger SLAs are mistakes (as in approvals.sla.calendar)
DEFAULT_WORKING_DAYS = (0, 1, 2, 3, 4)  # Monday=0 .. Friday, as date.weekday()
DEFAULT_DAY_START = time(9, 0)
DEFAULT_DAY_END = time(17, 0)
DEFAULT_SLA_HOURS = 72
DEFAULT_REMINDER_PERCENT = 75


def default_working_days() -> list[int]:
    return list(DEFAULT_WORKING_DAYS)


class SLARule(TenantOwnedModel):
    """An SLA for the stages it matches: contract type and stage name, each null for "any".

    For a stage without its own ``sla_hours`` the most specific active rule gives the hours
    (type + stage > stage > type > any); whatever gave the hours, that rule's escalation applies
    when the approval breaches. At most one active rule per (type, stage) pair, nulls included.
    """

    name = models.CharField(max_length=200)
    auto_named = models.BooleanField(
        default=True, help_text="The name was generated and follows edits of the rule."
    )
    # NULL, not "", is "any" (docs/api.md, "SLAs"), and the uniqueness constraint treats two
    # NULLs as equal.
    contract_type = models.CharField(max_length=50, null=True, blank=True)  # noqa: DJ001
    stage_name = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    sla_hours = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_SLA_HOURS)]
    )
    escalation_enabled = models.BooleanField(default=False)
    escalate_to_role = models.SlugField(max_length=50, null=True, blank=True)  # noqa: DJ001
    business_hours_only = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "SLA rule"
        verbose_name_plural = "SLA rules"
        constraints = [
            # Matching ignores case, so does uniqueness; two "any" (null) values collide too.
            models.UniqueConstraint(
                "tenant",
                Lower("contract_type"),
                Lower("stage_name"),
                condition=Q(is_active=True),
                nulls_distinct=False,
                name="slarule_one_active_per_scope",
            ),
            models.CheckConstraint(
                condition=Q(sla_hours__gte=1, sla_hours__lte=MAX_SLA_HOURS),
                name="slarule_hours_range",
            ),
            models.CheckConstraint(
                condition=Q(escalation_enabled=False) | Q(escalate_to_role__isnull=False),
                name="slarule_escalation_has_role",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class SLASettings(TenantOwnedModel):
    """A tenant's working calendar (in ``Tenant.timezone``) and SLA defaults; one per tenant.

    A tenant without a row gets the defaults: Monday to Friday 09:00-17:00, 72 h, reminder at 75%.
    """

    tenant = models.OneToOneField(
        "tenancy.Tenant", on_delete=models.CASCADE, editable=False, related_name="sla_settings"
    )
    working_days = ArrayField(
        models.PositiveSmallIntegerField(validators=[MaxValueValidator(6)]),
        default=default_working_days,
        help_text="Weekdays with working hours: 0 = Monday .. 6 = Sunday.",
    )
    day_start = models.TimeField(default=DEFAULT_DAY_START)
    day_end = models.TimeField(default=DEFAULT_DAY_END)
    default_sla_hours = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=DEFAULT_SLA_HOURS,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_SLA_HOURS)],
        help_text="Wall-clock hours for stages no rule matches; empty: such stages have no SLA.",
    )
    reminder_percent = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        default=DEFAULT_REMINDER_PERCENT,
        validators=[MinValueValidator(1), MaxValueValidator(99)],
        help_text="Remind approvers when this share of the SLA has elapsed; empty: no reminders.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "SLA settings"
        verbose_name_plural = "SLA settings"

    def __str__(self) -> str:
        return f"SLA settings of {self.tenant}"


class Holiday(TenantOwnedModel):
    """A local date without working hours for business-hours SLAs."""

    tenant = tenant_key(db_index=False)  # holiday_tenant_date_uq leads with it
    date = models.DateField()
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "date"], name="holiday_tenant_date_uq")
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class SLABreach(TenantOwnedModel):
    """An approval found pending past its due date: at most one per approval, ever."""

    tenant = tenant_key(db_index=False)  # (tenant, -breached_at) below leads with it
    approval = models.OneToOneField(
        WorkflowStageApproval, on_delete=models.CASCADE, related_name="sla_breach"
    )
    contract = models.ForeignKey(
        "contracts.Contract", on_delete=models.CASCADE, related_name="sla_breaches"
    )
    stage_name = models.CharField(max_length=100)
    due_at = models.DateTimeField()
    breached_at = models.DateTimeField()
    escalated_to = models.SlugField(  # noqa: DJ001
        max_length=50, null=True, blank=True, db_index=False
    )
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-breached_at", "id"]
        verbose_name = "SLA breach"
        verbose_name_plural = "SLA breaches"
        indexes = [
            models.Index(fields=["tenant", "-breached_at"], name="slabreach_tenant_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.stage_name} — {self.contract.title}: overdue"


# --- decide from e-mail ----------------------------------------------------------------------


class ApprovalLink(TenantOwnedModel):
    """A personal link to decide one approval from an e-mail (``/approve/<token>/``).

    One per approval row and person: a newer e-mail's link replaces the earlier one. Only the
    token's SHA-256 is stored; the token itself exists only in the e-mail. Whether a link still
    works is decided when it is used (``approvals.link_selectors``): the row must be pending and
    the person still eligible, so nothing has to revoke links when a row moves on.
    """

    tenant = tenant_key(db_index=False)  # approvallink_expiry_idx leads with it
    # Indexed by approvallink_one_per_person (approval, user).
    approval = models.ForeignKey(
        WorkflowStageApproval, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256, hex.")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["approval", "user"], name="approvallink_one_per_person")
        ]
        indexes = [models.Index(fields=["tenant", "expires_at"], name="approvallink_expiry_idx")]

    def __str__(self) -> str:
        return f"Link to {self.approval_id} for {self.user_id}"
