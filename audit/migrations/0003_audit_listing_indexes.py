"""Indexes for GET /api/audit-logs/: every filter plus the keyset cursor is one ordered index range.

The listing orders by ``created_at DESC, id DESC`` and pages with ``(created_at, id) < cursor``.
The per-filter indexes of 0001 ended at ``created_at``, so ties (every row of one transaction
shares ``created_at``) needed a sort and the row comparison could not bound the scan; they now end
with ``id`` too. The single-column tenant index is dropped: every composite index leads with the
tenant, and the audit table is the busiest writer, so each index costs every insert.

Built and dropped CONCURRENTLY (the table is large and written by every request), new ones first
so a listing is index-backed throughout; hence not atomic.
"""

import django.db.models.deletion
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("audit", "0002_append_only_trigger"),
        ("tenancy", "0001_initial"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="auditlog",
            index=models.Index(
                fields=["tenant", "action", "-created_at", "-id"],
                name="audit_tenant_action_time_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="auditlog",
            index=models.Index(
                fields=["tenant", "actor", "-created_at", "-id"],
                name="audit_tenant_actor_time_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="auditlog",
            index=models.Index(
                fields=["tenant", "resource_type", "resource_id", "-created_at", "-id"],
                name="audit_tenant_resource_time_idx",
            ),
        ),
        RemoveIndexConcurrently(model_name="auditlog", name="audit_tenant_action_idx"),
        RemoveIndexConcurrently(model_name="auditlog", name="audit_tenant_resource_idx"),
        RemoveIndexConcurrently(model_name="auditlog", name="audit_tenant_actor_idx"),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditlog",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        to="tenancy.tenant",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX CONCURRENTLY IF EXISTS "audit_auditlog_tenant_id_6a956a1c";',
                    'CREATE INDEX CONCURRENTLY IF NOT EXISTS "audit_auditlog_tenant_id_6a956a1c" '
                    'ON "audit_auditlog" ("tenant_id");',
                ),
            ],
        ),
    ]
