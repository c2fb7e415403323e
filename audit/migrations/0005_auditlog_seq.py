"""Audit rows gain ``seq``: the order they were inserted in, numbered by the database.

``seq`` is ``bigint NOT NULL DEFAULT nextval('audit_auditlog_seq_seq')``: PostgreSQL numbers
every row as it is inserted, whoever inserts it (``save``, ``bulk_create``, the SLA check's
``INSERT ... SELECT``). The listing orders by ``(created_at, seq)``: ``created_at`` is the
statement's time, shared by all the rows one INSERT writes, and the random UUID that broke those
ties scrambled them (``workflow_started`` listed before the ``contract_created`` written first).

The table is append-only (0002: a trigger refuses UPDATE and DELETE), so existing rows are not
updated: adding a column whose default is volatile makes PostgreSQL rewrite the table, evaluating
the default once per existing row in physical order, which for an append-only table is the order
the rows were inserted. No row trigger fires; the rewrite holds an ACCESS EXCLUSIVE lock on the
table while it runs (audit writes wait for it).

The sequence belongs to the column (``OWNED BY``: dropped with it). The app role may use it
(``nextval``, through the column default) but neither read nor set it (no ``setval``: rewinding it
would reorder the history). The owner role runs this migration. The listing indexes are rebuilt
on ``seq`` in 0006 (CONCURRENTLY, outside a transaction).
"""

from django.conf import settings
from django.db import migrations, models

SEQUENCE = "audit_auditlog_seq_seq"


def grant_sequence(apps, schema_editor):
    quote = schema_editor.quote_name
    sequence, app_role = quote(SEQUENCE), quote(settings.DATABASE_APP_ROLE)
    schema_editor.execute(f"ALTER SEQUENCE {sequence} OWNED BY audit_auditlog.seq")
    # tenancy 0004's default privileges gave it USAGE, SELECT, UPDATE: USAGE is all it needs.
    schema_editor.execute(f"REVOKE ALL ON SEQUENCE {sequence} FROM {app_role}")
    schema_editor.execute(f"GRANT USAGE ON SEQUENCE {sequence} TO {app_role}")


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_audit_partial_actor_indexes")]

    operations = [
        migrations.RunSQL(
            f"CREATE SEQUENCE {SEQUENCE} AS bigint",
            f"DROP SEQUENCE IF EXISTS {SEQUENCE}",
        ),
        migrations.AddField(
            model_name="auditlog",
            name="seq",
            field=models.BigIntegerField(
                db_default=models.Func(
                    models.Value(SEQUENCE),
                    function="nextval",
                    output_field=models.BigIntegerField(),
                ),
                editable=False,
            ),
        ),
        migrations.RunPython(grant_sequence, migrations.RunPython.noop, elidable=False),
        migrations.AlterModelOptions(
            name="auditlog",
            options={"ordering": ["-created_at", "-seq"]},
        ),
    ]
