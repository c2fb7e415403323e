"""The index of ``GET /api/audit-logs/?contract=``: ``tenant, contract, created_at, seq``.

Like the other listing indexes (0006), a filter plus the keyset cursor is one ordered range
read. Partial on the rows that have a contract: the filter is an equality, which implies it, and
most rows (logins, users, roles, definitions...) are about no contract.

Built CONCURRENTLY (the table is large and written by every request); hence not atomic.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("audit", "0007_auditlog_contract")]

    operations = [
        AddIndexConcurrently(
            model_name="auditlog",
            index=models.Index(
                condition=models.Q(("contract__isnull", False)),
                fields=["tenant", "contract", "-created_at", "-seq"],
                name="audit_contract_seq_idx",
            ),
        ),
    ]
