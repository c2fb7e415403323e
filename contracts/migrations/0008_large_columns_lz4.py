"""A contract's text and its revisions' content compressed with lz4 where the server has it.

PostgreSQL compresses a value of more than about 2 kB before storing it, with pglz unless the
column says otherwise; lz4 compresses several times faster for a similar size. A contract is
written with its text, and its first revision with the same text in its content, so pglz was a
visible share of the server's time in writing a new contract (bench/bench_process.py). Stored
values keep the compression they were written with; a server built without lz4 keeps pglz.
"""

from django.db import migrations

COLUMNS = (("contracts_contract", "text"), ("contracts_contractrevision", "content"))


_WHERE_LZ4 = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_settings
                WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)) THEN
        STATEMENTS
    END IF;
END
$$;
"""


def _set_compression(method: str) -> str:
    return _WHERE_LZ4.replace(
        "STATEMENTS",
        " ".join(
            f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method};"
            for table, column in COLUMNS
        ),
    )


class Migration(migrations.Migration):
    dependencies = [("contracts", "0007_contract_comments")]

    operations = [
        migrations.RunSQL(_set_compression("lz4"), _set_compression("default"), elidable=False)
    ]
