"""Workflow configuration: definitions, their stages, and an immutable snapshot per version."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from tenancy.scoping import TenantOwnedModel, tenant_key

MAX_STAGES = 20
MAX_APPROVERS_PER_STAGE = 20
MAX_SLA_HOURS = 8760
PRIORITY_BOUND = 1_000_000


# A stage's reset policy: which changes of a contract under review re-open its decisions.
RESET_ANY = "any"
RESET_NEVER = "never"


def reset_on_any_change() -> str:
    return RESET_ANY


class ApprovalType(models.TextChoices):
    ALL = "all", "All approvers"
    ANY = "any", "Any one approver"
    QUORUM = "quorum", "Quorum (min_approvals)"


class WorkflowDefinition(TenantOwnedModel):
    """Which contracts a workflow applies to (``trigger_conditions``) and its stages.

    Editing bumps ``version`` and stores a new ``WorkflowDefinitionVersion`` snapshot; running
    instances point at the snapshot they started with, so edits never change them.
    """

    tenant = tenant_key(db_index=False)  # workflowdef_tenant_name_uq leads with it
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="", max_length=2000)
    trigger_conditions = models.JSONField(
        default=dict, blank=True, help_text="Validated by workflows.rules; {} matches everything."
    )
    priority = models.IntegerField(
        default=0,
        validators=[MinValueValidator(-PRIORITY_BOUND), MaxValueValidator(PRIORITY_BOUND)],
        help_text="Highest priority wins; ties go to the older definition.",
    )
    is_active = models.BooleanField(default=True)
    distinct_approvers = models.BooleanField(
        default=True,
        help_text=(
            "One person decides at most one approval of a workflow (directly, as a delegate or "
            "on behalf of someone). Turn off only for teams too small to staff every stage."
        ),
    )
    signers = models.JSONField(
        default=list,
        blank=True,
        help_text=(
            "Who signs once the workflow completes: entries {role}, {user} or {name, email} "
            "(documents app); empty: no automatic signature request."
        ),
    )
    signing_order = models.CharField(
        max_length=10, default="parallel", help_text="parallel or sequential signing."
    )
    version = models.PositiveIntegerField(default=1, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-priority", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="workflowdef_tenant_name_uq"),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "-priority", "created_at"],
                condition=Q(is_active=True),
                name="workflowdef_active_match_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (v{self.version})"


class WorkflowStageDefinition(models.Model):
    """One stage of a definition's current version (the editable configuration)."""

    # Indexed by stagedef_definition_name_uq (definition, stage_name).
    definition = models.ForeignKey(
        WorkflowDefinition, on_delete=models.CASCADE, related_name="stages", db_index=False
    )
    stage_name = models.CharField(max_length=100)
    sequence = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Stages sharing a sequence number run in parallel.",
    )
    approvers = ArrayField(
        models.CharField(max_length=60),
        help_text='Role slugs (e.g. "legal") or "user:<uuid>" for a named person.',
    )
    approval_type = models.CharField(
        max_length=10, choices=ApprovalType.choices, default=ApprovalType.ALL
    )
    min_approvals = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Required for quorum stages."
    )
    sla_hours = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_SLA_HOURS)],
        help_text="Empty: the tenant's SLA rules decide.",
    )
    is_required = models.BooleanField(
        default=True, help_text="A rejection at an optional stage is recorded but does not reject."
    )
    reset_on_change = models.JSONField(
        default=reset_on_any_change,
        help_text=(
            'When an edit during review re-opens this stage\'s decisions: "any" change, a list '
            'of business fields, or "never".'
        ),
    )

    class Meta:
        ordering = ["sequence", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["definition", "stage_name"], name="stagedef_definition_name_uq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sequence}. {self.stage_name}"


class WorkflowDefinitionVersion(TenantOwnedModel):
    """The immutable configuration of one version, as instances started on it saw it."""

    # Indexed by workflowdefversion_uq (definition, version).
    definition = models.ForeignKey(
        WorkflowDefinition, on_delete=models.CASCADE, related_name="versions", db_index=False
    )
    version = models.PositiveIntegerField()
    snapshot = models.JSONField(help_text="name, trigger_conditions, priority and stages.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["definition", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["definition", "version"], name="workflowdefversion_uq"),
        ]

    def __str__(self) -> str:
        return f"{self.snapshot.get('name', '?')} v{self.version}"
