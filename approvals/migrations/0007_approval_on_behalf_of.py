"""Approval rows record on whose behalf an out-of-office cover holds them."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0006_approval_link"),
        ("contracts", "0005_revision_history"),
        ("tenancy", "0009_role_catalog_managers_out_of_office"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="workflowstageapproval",
            name="on_behalf_of",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                help_text="The person this row was meant for, when it went to their out-of-office cover.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddIndex(
            model_name="workflowstageapproval",
            index=models.Index(
                condition=models.Q(("on_behalf_of__isnull", False)),
                fields=["on_behalf_of"],
                name="approval_on_behalf_of_idx",
            ),
        ),
    ]
