"""As ``tenancy.0012``, for the keys of notifications: each key that another index of its table
leads with loses its own index (dropped CONCURRENTLY, hence not atomic); the constraints stay.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# Django's names for the indexes the keys had (deterministic: table, column and a hash), each
# with its table and column, and the index that leads with that column.
DROPPED = {
    # notificationpref_user_type_uq
    "notifications_notificationpreference_user_id_7cfb3d3a": (
        "notifications_notificationpreference",
        "user_id",
    ),
}


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("notifications", "0011_signature_and_comment_types_together"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="notificationpreference",
                    name="user",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="notification_preferences",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX CONCURRENTLY IF EXISTS "{name}";',
                    f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{table}" ("{column}");',
                )
                for name, (table, column) in DROPPED.items()
            ],
        ),
    ]
