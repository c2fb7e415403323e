"""As ``tenancy.0012``, for the keys of approvals: each key that another index of its table
leads with loses its own index (dropped CONCURRENTLY, hence not atomic); the constraints stay.
"""

from importlib import import_module

import django.db.models.deletion
from django.db import migrations, models

key_indexes = import_module("tenancy.migrations.0012_redundant_key_indexes")

# As in tenancy.0012: Django's name of each index, its table and column, and above it the
# index that leads with that column.
DROPPED = {
    # holiday_tenant_date_uq
    "approvals_holiday_tenant_id_257ac3f0": ("approvals_holiday", "tenant_id"),
    # instance_tenant_status_idx
    "approvals_workflowinstance_tenant_id_fccce661": ("approvals_workflowinstance", "tenant_id"),
    # stage_instance_name_uq
    "approvals_workflowstage_instance_id_be7c0eea": ("approvals_workflowstage", "instance_id"),
}


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("approvals", "0007_approval_on_behalf_of"),
        ("tenancy", "0012_redundant_key_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="holiday",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="tenancy.tenant",
                    ),
                ),
                migrations.AlterField(
                    model_name="workflowinstance",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="tenancy.tenant",
                    ),
                ),
                migrations.AlterField(
                    model_name="workflowstage",
                    name="instance",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="stages",
                        to="approvals.workflowinstance",
                    ),
                ),
            ],
            database_operations=key_indexes.dropped_concurrently(DROPPED),
        ),
    ]
