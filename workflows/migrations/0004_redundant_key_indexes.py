"""As ``tenancy.0012``, for the keys of workflows: each key that another index of its table
leads with loses its own index (dropped CONCURRENTLY, hence not atomic); the constraints stay.
"""

from importlib import import_module

import django.db.models.deletion
from django.db import migrations, models

key_indexes = import_module("tenancy.migrations.0012_redundant_key_indexes")

# As in tenancy.0012: Django's name of each index, its table and column, and above it the
# index that leads with that column.
DROPPED = {
    # workflowdef_tenant_name_uq
    "workflows_workflowdefinition_tenant_id_0ae084f5": (
        "workflows_workflowdefinition",
        "tenant_id",
    ),
    # workflowdefversion_uq
    "workflows_workflowdefinitionversion_definition_id_cbd3c307": (
        "workflows_workflowdefinitionversion",
        "definition_id",
    ),
    # stagedef_definition_name_uq
    "workflows_workflowstagedefinition_definition_id_04b84f96": (
        "workflows_workflowstagedefinition",
        "definition_id",
    ),
}


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tenancy", "0012_redundant_key_indexes"),
        ("workflows", "0003_definition_signers"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="workflowdefinition",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="tenancy.tenant",
                    ),
                ),
                migrations.AlterField(
                    model_name="workflowdefinitionversion",
                    name="definition",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="versions",
                        to="workflows.workflowdefinition",
                    ),
                ),
                migrations.AlterField(
                    model_name="workflowstagedefinition",
                    name="definition",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="stages",
                        to="workflows.workflowdefinition",
                    ),
                ),
            ],
            database_operations=key_indexes.dropped_concurrently(DROPPED),
        ),
    ]
