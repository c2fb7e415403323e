"""The actor indexes of the audit log are partial, on the rows that have an actor.

System actions (the SLA check's breach and escalation rows, cross-tenant jobs' RLS bypass rows,
failed logins) have no actor; their rows wrote an entry with a NULL key into both actor indexes all
the same. The API's actor filter is an equality on a UUID and the database's foreign key check
when a user is deleted is one too: both imply ``actor_id IS NOT NULL``, so partial indexes serve
them unchanged. The listing index gets a new name (a changed definition); the foreign key's own
index is replaced by one under the model's ``Meta.indexes``.

Built and dropped CONCURRENTLY (the table is large and written by every request), the new ones
first so an actor filter is index-backed throughout; hence not atomic.
"""

import django.db.models.deletion
from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("audit", "0003_audit_listing_indexes"),
        ("tenancy", "0004_row_level_security"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="auditlog",
            index=models.Index(
                condition=models.Q(("actor__isnull", False)),
                fields=["tenant", "actor", "-created_at", "-id"],
                name="audit_actor_time_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="auditlog",
            index=models.Index(
                condition=models.Q(("actor__isnull", False)),
                fields=["actor"],
                name="audit_actor_idx",
            ),
        ),
        RemoveIndexConcurrently(model_name="auditlog", name="audit_tenant_actor_time_idx"),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditlog",
                    name="actor",
                    field=models.ForeignKey(
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX CONCURRENTLY IF EXISTS "audit_auditlog_actor_id_20e70a27";',
                    'CREATE INDEX CONCURRENTLY IF NOT EXISTS "audit_auditlog_actor_id_20e70a27" '
                    'ON "audit_auditlog" ("actor_id");',
                ),
            ],
        ),
    ]
