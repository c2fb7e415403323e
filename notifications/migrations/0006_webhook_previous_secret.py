"""The secret a rotation replaced, which signs deliveries beside the new one until it expires.

Existing secrets stay as they are (notifications/signing.py says how they sign); the new columns
need no rewrite: an empty string and NULL.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0005_webhook_endpoint_lease"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookendpoint",
            name="previous_secret",
            field=models.CharField(blank=True, default="", max_length=200),
        ),
        migrations.AddField(
            model_name="webhookendpoint",
            name="previous_secret_expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
