"""Fewer index entries per approval row: partial indexes on the user references, none on the role
or the tenant alone.

Most approvals have no assignee (role approvals), no delegate and, while pending, no decider; their
full single-column indexes held an entry for every row all the same, rewritten whenever a row
version moves to another page (the breach check's overdue mark on a full page). Every lookup by
these columns is an equality (Django's PROTECT check and the database's foreign key check when a
user is deleted, the SET NULL of ``delegated_from``), which a partial index ``WHERE <column> IS NOT
NULL`` serves. ``role`` is only read with the tenant on pending rows (``approval_pending_role_idx``):
its two indexes (plain and ``varchar_pattern_ops``) go. So does the tenant's own index:
``approval_decided_by_idx`` (tenant, decided_by) leads with the tenant and covers every row.

Built and dropped CONCURRENTLY (a large table written by every decision), the new indexes first;
hence not atomic.
"""

import django.db.models.deletion
from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

TABLE = "approvals_workflowstageapproval"
# Django's names for the indexes the fields had (deterministic: table, column and a hash).
DROPPED = {
    "approvals_workflowstageapproval_assigned_to_id_2aa0a96a": '("assigned_to_id")',
    "approvals_workflowstageapproval_delegated_to_id_e1975586": '("delegated_to_id")',
    "approvals_workflowstageapproval_delegated_from_id_58f82f56": '("delegated_from_id")',
    "approvals_workflowstageapproval_decided_by_id_18573b12": '("decided_by_id")',
    "approvals_workflowstageapproval_role_92bba4d8": '("role")',
    "approvals_workflowstageapproval_role_92bba4d8_like": '("role" varchar_pattern_ops)',
    "approvals_workflowstageapproval_tenant_id_39af67d4": '("tenant_id")',
}


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("approvals", "0002_sla_rules_calendar_breaches"),
        ("contracts", "0003_contract_clause_findings"),
        ("tenancy", "0004_row_level_security"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="workflowstageapproval",
            index=models.Index(
                condition=models.Q(("assigned_to__isnull", False)),
                fields=["assigned_to"],
                name="approval_assigned_to_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="workflowstageapproval",
            index=models.Index(
                condition=models.Q(("delegated_to__isnull", False)),
                fields=["delegated_to"],
                name="approval_delegated_to_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="workflowstageapproval",
            index=models.Index(
                condition=models.Q(("delegated_from__isnull", False)),
                fields=["delegated_from"],
                name="approval_delegated_from_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="workflowstageapproval",
            index=models.Index(
                condition=models.Q(("decided_by__isnull", False)),
                fields=["decided_by"],
                name="approval_decider_idx",
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="workflowstageapproval",
                    name="assigned_to",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        help_text="Set for named approvers and delegates; empty for role approvals.",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="assigned_approvals",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="workflowstageapproval",
                    name="decided_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="decided_approvals",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="workflowstageapproval",
                    name="delegated_from",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="approvals.workflowstageapproval",
                    ),
                ),
                migrations.AlterField(
                    model_name="workflowstageapproval",
                    name="delegated_to",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="workflowstageapproval",
                    name="role",
                    field=models.SlugField(blank=True, db_index=False, default=""),
                ),
                migrations.AlterField(
                    model_name="workflowstageapproval",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="tenancy.tenant",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX CONCURRENTLY IF EXISTS "{name}";',
                    f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{TABLE}" {columns};',
                )
                for name, columns in DROPPED.items()
            ],
        ),
    ]
