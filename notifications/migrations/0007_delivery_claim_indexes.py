"""Indexes of the pending e-mails by due time, and of each endpoint's pending deliveries by due
time, for the worker's claim.

A claim takes the due e-mails and leases one endpoint with its due rows in order. Without these,
the e-mails' scan reads past every due webhook row, and the endpoint's rows are found through its
whole delivery history (``delivery_endpoint_time_idx``) or every due row of every endpoint.
Partial on pending rows, so they hold the queue, not the history. Built CONCURRENTLY (the table
is written by every workflow event); hence not atomic.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("notifications", "0006_webhook_previous_secret"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("channel", "email"), ("status", "pending")),
                fields=["next_attempt_at"],
                name="delivery_email_due_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("endpoint__isnull", False), ("status", "pending")),
                fields=["endpoint", "next_attempt_at"],
                name="delivery_endpoint_due_idx",
            ),
        ),
    ]
