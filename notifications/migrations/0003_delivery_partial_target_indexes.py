"""Fewer index entries per notification and delivery.

* A delivery has a notification (email) or an endpoint (webhook), never both
  (``delivery_has_target``): each foreign key's index is now partial, on the rows that have it.
  Every lookup by either is an equality (the endpoint's delivery log, the cascades from a deleted
  notification or endpoint, the database's own foreign key checks), which implies IS NOT NULL.
  The endpoint's single-column index goes: the delivery log index leads with the endpoint (and
  gets a new name with its partial definition).
* A notification's recipient has no index of its own: ``notification_inbox_idx`` leads with it.

Built and dropped CONCURRENTLY (tables written by every workflow event), the new indexes first;
hence not atomic.
"""

import django.db.models.deletion
from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models

# Django's names for the indexes the foreign keys had (deterministic: table, column and a hash).
DROPPED = {
    "notifications_delivery_endpoint_id_846da2ab": ("notifications_delivery", "endpoint_id"),
    "notifications_delivery_notification_id_ea8dc048": (
        "notifications_delivery",
        "notification_id",
    ),
    "notifications_notification_recipient_id_d055f3f0": (
        "notifications_notification",
        "recipient_id",
    ),
}


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("notifications", "0002_delivery_claim_token_and_log_index"),
        ("tenancy", "0004_row_level_security"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("endpoint__isnull", False)),
                fields=["endpoint", "-created_at"],
                name="delivery_endpoint_time_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("notification__isnull", False)),
                fields=["notification"],
                name="delivery_notification_idx",
            ),
        ),
        RemoveIndexConcurrently(model_name="delivery", name="delivery_endpoint_log_idx"),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="delivery",
                    name="endpoint",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="deliveries",
                        to="notifications.webhookendpoint",
                    ),
                ),
                migrations.AlterField(
                    model_name="delivery",
                    name="notification",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="deliveries",
                        to="notifications.notification",
                    ),
                ),
                migrations.AlterField(
                    model_name="notification",
                    name="recipient",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="notifications",
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
