"""Audit rows gain ``contract``: the contract a row is about (its id), or NULL.

A nullable uuid column ``contract_id``, not a foreign key: the audit app does not depend on the
contracts app, and history must never block or cascade a contract's deletion. Adding a nullable
column without a default changes the catalog only (no rewrite); existing rows keep NULL, since
the table is append-only (0002) and is not updated. ``audit.services`` fills it for new rows.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_audit_seq_indexes")]

    operations = [
        migrations.AddField(
            model_name="auditlog",
            name="contract",
            field=models.UUIDField(
                blank=True,
                db_column="contract_id",
                editable=False,
                help_text=(
                    "The contract the row is about (the contract, its workflow instances, stages"
                    " or approvals); null for anything else."
                ),
                null=True,
            ),
        ),
    ]
