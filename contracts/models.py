from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from contracts.playbook import MAX_PHRASE_LENGTH
from tenancy.scoping import TenantOwnedModel, tenant_key


class ContractStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    APPROVED = "approved", "Approved"
    SIGNED = "signed", "Signed"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


# numeric(18, 2): up to 9,999,999,999,999,999.99 — beyond any real contract, within JS-safe parsing.
VALUE_MAX_DIGITS = 18
VALUE_DECIMAL_PLACES = 2
TEXT_MAX_LENGTH = 2_000_000
# The fields a requester sets, revisions hash and approvals bind to; everything else on a
# contract is owned by the services.
BUSINESS_FIELDS = (
    "title",
    "contract_type",
    "value",
    "currency",
    "counterparty",
    "department",
    "region",
    "start_date",
    "end_date",
    "text",
    "metadata",
)


# What the services keep on a contract, never a caller: its state, revision and authorship.
RECORD_FIELDS = ("status", "revision", "content_hash", "created_by", "created_at", "updated_at")


def amount_text(value, currency: str) -> str:
    """A contract's value as people read it on a page ("125,000.00 USD"), from the model's
    Decimal or a revision's string; empty without a value."""
    return f"{Decimal(value):,.2f} {currency}" if value not in (None, "") else ""


class Contract(TenantOwnedModel):
    tenant = tenant_key(db_index=False)  # contract_tenant_created_idx leads with it
    title = models.CharField(max_length=255)
    contract_type = models.CharField(max_length=50, help_text="e.g. MSA, SOW, NDA")
    value = models.DecimalField(
        max_digits=VALUE_MAX_DIGITS, decimal_places=VALUE_DECIMAL_PLACES, null=True, blank=True
    )
    currency = models.CharField(max_length=3, default="USD")
    counterparty = models.CharField(max_length=255, blank=True, default="")
    department = models.CharField(max_length=100, blank=True, default="")
    region = models.CharField(max_length=100, blank=True, default="")
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    text = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    has_blocking_findings = models.BooleanField(
        default=False, help_text="Set by clause validation; usable in trigger rules."
    )
    clause_findings = models.JSONField(
        null=True,
        blank=True,
        default=None,
        editable=False,
        help_text=(
            "Summary of the last clause validation: valid, blocking, warnings, info, "
            "missing_required, prohibited_found, checked_at (null until validated)."
        ),
    )
    status = models.CharField(
        max_length=20, choices=ContractStatus.choices, default=ContractStatus.DRAFT
    )
    revision = models.PositiveIntegerField(
        default=1, editable=False, help_text="Number of the current ContractRevision."
    )
    content_hash = models.CharField(
        max_length=64,
        default="",
        editable=False,
        help_text="SHA-256 of the business fields' canonical JSON (contracts.revisions).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="contracts_created"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="contract_tenant_created_idx"),
            models.Index(fields=["tenant", "status"], name="contract_tenant_status_idx"),
            models.Index(fields=["tenant", "contract_type"], name="contract_tenant_type_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(value__isnull=True) | Q(value__gte=0), name="contract_value_nonneg"
            ),
            models.CheckConstraint(
                condition=Q(start_date__isnull=True)
                | Q(end_date__isnull=True)
                | Q(end_date__gte=models.F("start_date")),
                name="contract_dates_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class ContractRevision(TenantOwnedModel):
    """One immutable state of a contract's business fields: what approvers decided on.

    Written by the contract services on every change of a business field (a database trigger
    refuses UPDATE); approval rows record the ``number`` their decision was made on.
    """

    # Indexed by revision_contract_uq (contract, number).
    contract = models.ForeignKey(
        Contract, on_delete=models.CASCADE, related_name="revisions", db_index=False
    )
    number = models.PositiveIntegerField()
    content_hash = models.CharField(max_length=64)
    content = models.JSONField(help_text="The business fields, as hashed (canonical values).")
    changed_fields = ArrayField(models.CharField(max_length=20), default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["contract", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["contract", "number"], name="revision_contract_uq"),
        ]

    def __str__(self) -> str:
        return f"Revision {self.number} of {self.contract.title}"


# --- clause library -------------------------------------------------------------------------
# Bounds of a clause rule; the phrase rules themselves live in contracts.playbook.
MAX_PATTERNS_PER_RULE = 50
MAX_CONTRACT_TYPES_PER_RULE = 50
CONTRACT_TYPE_MAX_LENGTH = 50
GUIDANCE_MAX_LENGTH = 5000


class ClauseKind(models.TextChoices):
    REQUIRED = "required", "Required (missing is a finding)"
    PROHIBITED = "prohibited", "Prohibited (present is a finding)"


class ClauseSeverity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    BLOCKING = "blocking", "Blocking"


class ClauseRule(TenantOwnedModel):
    """One rule of a tenant's clause library (playbook), checked against contract texts.

    ``patterns`` are plain phrases (never regular expressions), matched case-insensitively on
    word boundaries by ``contracts.playbook``; ``contract_types`` empty means every type.
    """

    tenant = tenant_key(db_index=False)  # clauserule_tenant_name_uq leads with it
    name = models.CharField(max_length=200)
    category = models.CharField(max_length=100, blank=True, default="")
    contract_types = ArrayField(
        models.CharField(max_length=CONTRACT_TYPE_MAX_LENGTH),
        default=list,
        blank=True,
        help_text="Contract types the rule applies to; empty applies to every type.",
    )
    kind = models.CharField(max_length=20, choices=ClauseKind.choices)
    patterns = ArrayField(
        models.CharField(max_length=MAX_PHRASE_LENGTH),
        help_text="Plain phrases, matched case-insensitively on word boundaries.",
    )
    severity = models.CharField(
        max_length=20, choices=ClauseSeverity.choices, default=ClauseSeverity.WARNING
    )
    guidance = models.TextField(
        blank=True,
        default="",
        max_length=GUIDANCE_MAX_LENGTH,
        help_text="Shown to reviewers with each finding, e.g. the fallback wording.",
    )
    is_active = models.BooleanField(default=True)
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
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="clauserule_tenant_name_uq"),
            models.CheckConstraint(
                condition=Q(kind__in=ClauseKind.values), name="clauserule_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(severity__in=ClauseSeverity.values), name="clauserule_severity_valid"
            ),
            models.CheckConstraint(
                condition=Q(patterns__len__gte=1) & Q(patterns__len__lte=MAX_PATTERNS_PER_RULE),
                name="clauserule_patterns_count",
            ),
        ]

    def __str__(self) -> str:
        return self.name


COMMENT_MAX_LENGTH = 10_000


class Comment(TenantOwnedModel):
    """One message of a contract's discussion thread; ``mentions`` are members told of it."""

    # Indexed by comment_thread_idx, which leads with it.
    contract = models.ForeignKey(
        Contract, on_delete=models.CASCADE, related_name="comments", db_index=False
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    body = models.TextField(max_length=COMMENT_MAX_LENGTH)
    mentions = ArrayField(models.UUIDField(), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["contract", "created_at"], name="comment_thread_idx")]

    def __str__(self) -> str:
        return f"Comment on {self.contract_id} by {self.author_id}"
