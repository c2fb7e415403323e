import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

# The sequence behind ``AuditLog.seq`` (created by migration 0005, owned by the column).
SEQ_SEQUENCE = "audit_auditlog_seq_seq"


class AuditLog(models.Model):
    """One row per action. Append-only: a database trigger refuses UPDATE and DELETE."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Null only for events with no tenant yet (a failed login for an unknown email).
    # No single-column index: every composite index below leads with the tenant.
    tenant = models.ForeignKey(
        "tenancy.Tenant", on_delete=models.DO_NOTHING, null=True, db_constraint=True, db_index=False
    )
    action = models.CharField(max_length=64)
    # Null for system actions (the SLA check, cross-tenant jobs, failed logins): their rows skip
    # both actor indexes below, which are partial (an actor filter is an equality).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        null=True,
        related_name="+",
        db_index=False,
    )
    resource_type = models.CharField(max_length=64, blank=True)
    resource_id = models.CharField(max_length=64, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    # The contract the row is about: the contract itself, or one of its workflow instances,
    # stages, approvals or SLA breaches (``audit.services`` derives it from the resource); null
    # for everything else. A plain uuid column, not a foreign key: the audit app does not depend
    # on the contracts app, and history never blocks or cascades a contract's deletion.
    contract = models.UUIDField(
        null=True,
        blank=True,
        editable=False,
        db_column="contract_id",
        help_text=(
            "The contract the row is about (the contract, its workflow instances, stages or "
            "approvals); null for anything else."
        ),
    )
    # The time of the statement that wrote the row (Now() is statement_timestamp() on PostgreSQL):
    # every row of one INSERT shares it, and a workflow transition writes all its rows in one.
    created_at = models.DateTimeField(db_default=models.functions.Now())
    # Insertion order, from a PostgreSQL sequence (nextval as the column default), so also for
    # bulk_create and the SLA check's INSERT ... SELECT: it orders the rows that share
    # `created_at` as they were written. Unique in practice (nothing inserts it explicitly); no
    # constraint, which would be one more index for the busiest writer to maintain.
    seq = models.BigIntegerField(
        db_default=models.Func(
            models.Value(SEQ_SEQUENCE), function="nextval", output_field=models.BigIntegerField()
        ),
        editable=False,
    )

    class Meta:
        # Unique, and in the order things happened: statements by their time, the rows of one
        # statement by `seq`. The listing's keyset cursor walks it:
        # WHERE (created_at, seq) < (cursor) ORDER BY created_at DESC, seq DESC.
        ordering = ["-created_at", "-seq"]
        # One index per API filter, each `tenant, <filter columns>, created_at, seq` with the same
        # direction as the listing's ORDER BY: an equality filter plus the cursor is one index range
        # read in order, stopping after a page, however deep the page (see bench/bench_audit.py).
        indexes = [
            # Unfiltered listing, and date_from / date_to alone.
            models.Index(fields=["tenant", "-created_at", "-seq"], name="audit_tenant_seq_idx"),
            models.Index(
                fields=["tenant", "action", "-created_at", "-seq"],
                name="audit_action_seq_idx",
            ),
            models.Index(
                fields=["tenant", "actor", "-created_at", "-seq"],
                condition=Q(actor__isnull=False),
                name="audit_actor_seq_idx",
            ),
            models.Index(
                fields=["tenant", "resource_type", "resource_id", "-created_at", "-seq"],
                name="audit_resource_seq_idx",
            ),
            # ?contract=: the contract's whole trail. Partial: most rows are about no contract.
            models.Index(
                fields=["tenant", "contract", "-created_at", "-seq"],
                condition=Q(contract__isnull=False),
                name="audit_contract_seq_idx",
            ),
            # The database's foreign key check when a user is deleted.
            models.Index(
                fields=["actor"], condition=Q(actor__isnull=False), name="audit_actor_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.resource_type}:{self.resource_id}"
