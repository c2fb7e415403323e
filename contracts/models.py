from django.conf import settings
from django.db import models
from django.db.models import Q

from tenancy.scoping import TenantOwnedModel


class ContractStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


# numeric(18, 2): up to 9,999,999,999,999,999.99 — beyond any real contract, within JS-safe parsing.
VALUE_MAX_DIGITS = 18
VALUE_DECIMAL_PLACES = 2
TEXT_MAX_LENGTH = 2_000_000


class Contract(TenantOwnedModel):
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
    status = models.CharField(
        max_length=20, choices=ContractStatus.choices, default=ContractStatus.DRAFT
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
