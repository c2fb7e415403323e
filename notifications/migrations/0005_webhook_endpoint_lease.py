"""A lease on each webhook endpoint, held by the one delivery worker's claim that sends to it.

Two nullable columns: adding them rewrites nothing (no default), so the lock is brief.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0004_approval_reset_and_changes_requested_types"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookendpoint",
            name="claim_token",
            field=models.UUIDField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="webhookendpoint",
            name="locked_until",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
    ]
