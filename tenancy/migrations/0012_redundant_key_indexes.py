"""Foreign keys without an index of their own where a composite index or unique constraint
already leads with the key (each listed below with it): lookups by the key and the checks of
its foreign key use that one, so the single-column index only cost every insert an entry
(``tests/test_schema_indexes.py``).

The database keeps its foreign-key constraints: only the indexes go, dropped CONCURRENTLY (the
tables are written by every request), hence not atomic.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# Django's names for the indexes the keys had (deterministic: table, column and a hash), each
# with its table and column, and the index that leads with that column.
DROPPED = {
    # idempotency_tenant_user_key_unique
    "tenancy_idempotencyrecord_tenant_id_f285c063": ("tenancy_idempotencyrecord", "tenant_id"),
    # role_tenant_slug_uq
    "tenancy_role_tenant_id_41b582c6": ("tenancy_role", "tenant_id"),
    # userrole_tenant_role_idx
    "tenancy_userrole_tenant_id_e5bc1202": ("tenancy_userrole", "tenant_id"),
    # userrole_user_role_unique
    "tenancy_userrole_user_id_eb4bd82a": ("tenancy_userrole", "user_id"),
}


def dropped_concurrently(dropped: dict[str, tuple[str, str]]) -> list[migrations.RunSQL]:
    """A DROP INDEX CONCURRENTLY for each of ``dropped`` (Django's index name: its table and
    column), with the CREATE that puts it back; the other apps' migrations of this change too."""
    return [
        migrations.RunSQL(
            f'DROP INDEX CONCURRENTLY IF EXISTS "{name}";',
            f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{table}" ("{column}");',
        )
        for name, (table, column) in dropped.items()
    ]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tenancy", "0011_app_current_tenant_qualified"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="idempotencyrecord",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="tenancy.tenant",
                    ),
                ),
                migrations.AlterField(
                    model_name="role",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="tenancy.tenant",
                    ),
                ),
                migrations.AlterField(
                    model_name="userrole",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="tenancy.tenant",
                    ),
                ),
                migrations.AlterField(
                    model_name="userrole",
                    name="user",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="role_assignments",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            database_operations=dropped_concurrently(DROPPED),
        ),
    ]
