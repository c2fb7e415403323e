"""As ``tenancy.0012``, for the keys of workflows: each key that another index of its table
leads with loses its own index (dropped CONCURRENTLY, hence not atomic); the constraints stay.
"""

import django.db.models.deletion
from django.db import migrations, models

# Django's names for the indexes the keys had (deterministic: table, column and a hash), each
# with its table and column, and the index that leads with that column.
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
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX CONCURRENTLY IF EXISTS "{name}";',
                    f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{table}" ("{column}");',
                )
                for name, (table, column) in DROPPED.items()
            ],
        ),
    ]
