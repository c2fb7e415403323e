"""As ``tenancy.0012``, for the keys of contracts: each key that another index of its table
leads with loses its own index (dropped CONCURRENTLY, hence not atomic); the constraints stay.
"""

from importlib import import_module

import django.db.models.deletion
from django.db import migrations, models

key_indexes = import_module("tenancy.migrations.0012_redundant_key_indexes")

# As in tenancy.0012: Django's name of each index, its table and column, and above it the
# index that leads with that column.
DROPPED = {
    # clauserule_tenant_name_uq
    "contracts_clauserule_tenant_id_bae99291": ("contracts_clauserule", "tenant_id"),
    # comment_thread_idx
    "contracts_comment_contract_id_55bd579d": ("contracts_comment", "contract_id"),
    # contract_tenant_created_idx
    "contracts_contract_tenant_id_faeeee05": ("contracts_contract", "tenant_id"),
    # revision_contract_uq
    "contracts_contractrevision_contract_id_03777a99": (
        "contracts_contractrevision",
        "contract_id",
    ),
}


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("contracts", "0008_large_columns_lz4"),
        ("tenancy", "0012_redundant_key_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="clauserule",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="tenancy.tenant",
                    ),
                ),
                migrations.AlterField(
                    model_name="comment",
                    name="contract",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="comments",
                        to="contracts.contract",
                    ),
                ),
                migrations.AlterField(
                    model_name="contract",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="tenancy.tenant",
                    ),
                ),
                migrations.AlterField(
                    model_name="contractrevision",
                    name="contract",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="revisions",
                        to="contracts.contract",
                    ),
                ),
            ],
            database_operations=key_indexes.dropped_concurrently(DROPPED),
        ),
    ]
