"""As ``tenancy.0012``, for the keys of documents: each key that another index of its table
leads with loses its own index (dropped CONCURRENTLY, hence not atomic); the constraints stay.
"""

from importlib import import_module

import django.db.models.deletion
from django.db import migrations, models

key_indexes = import_module("tenancy.migrations.0012_redundant_key_indexes")

# As in tenancy.0012: Django's name of each index, its table and column, and above it the
# index that leads with that column.
DROPPED = {
    # document_contract_idx
    "documents_document_contract_id_5aa04278": ("documents_document", "contract_id"),
    # sigrequest_contract_idx
    "documents_signaturerequest_contract_id_719c27eb": (
        "documents_signaturerequest",
        "contract_id",
    ),
    # signer_position_uq
    "documents_signer_request_id_97198d71": ("documents_signer", "request_id"),
}


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("contracts", "0009_redundant_key_indexes"),
        ("documents", "0002_row_level_security_and_immutable_documents"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="document",
                    name="contract",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="documents",
                        to="contracts.contract",
                    ),
                ),
                migrations.AlterField(
                    model_name="signaturerequest",
                    name="contract",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="signature_requests",
                        to="contracts.contract",
                    ),
                ),
                migrations.AlterField(
                    model_name="signer",
                    name="request",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="signers",
                        to="documents.signaturerequest",
                    ),
                ),
            ],
            database_operations=key_indexes.dropped_concurrently(DROPPED),
        ),
    ]
