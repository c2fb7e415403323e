"""As ``tenancy.0012``, for the keys of notifications: each key that another index of its table
leads with loses its own index (dropped CONCURRENTLY, hence not atomic); the constraints stay.
"""

from importlib import import_module

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

key_indexes = import_module("tenancy.migrations.0012_redundant_key_indexes")

# As in tenancy.0012: Django's name of each index, its table and column, and above it the
# index that leads with that column.
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
            database_operations=key_indexes.dropped_concurrently(DROPPED),
        ),
    ]
