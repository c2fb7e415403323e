"""No table of ours carries an index that another index of the same table already is.

A b-tree index whose key columns (with their operator classes and collations) lead another
whole-table b-tree index answers nothing the other does not: lookups, foreign-key checks and
ordered scans on those columns use the longer one. It still costs an entry on every insert and
every non-HOT update, and its pages in memory. Django adds one to every foreign key, so a key
that a composite index or unique constraint already leads with says ``db_index=False``.
"""

import pytest
from django.apps import apps
from django.db import connection

pytestmark = pytest.mark.django_db

OUR_APPS = {"approvals", "audit", "contracts", "documents", "notifications", "tenancy", "workflows"}

# Pairs (index, longer index) on one table: the first is plain (no predicate, no expression),
# not unique, and its keys with their operator classes and collations lead the second, which is
# a whole-table b-tree index too.
REDUNDANT = """
SELECT t.relname, short.relname, long.relname
  FROM pg_index a
  JOIN pg_index b ON b.indrelid = a.indrelid AND b.indexrelid <> a.indexrelid
  JOIN pg_class t ON t.oid = a.indrelid
  JOIN pg_class short ON short.oid = a.indexrelid
  JOIN pg_class long ON long.oid = b.indexrelid
  JOIN pg_am am_a ON am_a.oid = short.relam AND am_a.amname = 'btree'
  JOIN pg_am am_b ON am_b.oid = long.relam AND am_b.amname = 'btree'
 WHERE t.relname = ANY(%s)
   AND NOT a.indisunique
   AND a.indpred IS NULL AND b.indpred IS NULL
   AND a.indexprs IS NULL AND b.indexprs IS NULL
   AND a.indnkeyatts <= b.indnkeyatts
   AND (a.indkey::int2[])[0:a.indnkeyatts - 1] = (b.indkey::int2[])[0:a.indnkeyatts - 1]
   AND (a.indclass::oid[])[0:a.indnkeyatts - 1] = (b.indclass::oid[])[0:a.indnkeyatts - 1]
   AND (a.indcollation::oid[])[0:a.indnkeyatts - 1]
       = (b.indcollation::oid[])[0:a.indnkeyatts - 1]
   AND (a.indoption::int2[])[0:a.indnkeyatts - 1] = (b.indoption::int2[])[0:a.indnkeyatts - 1]
 ORDER BY 1, 2, 3
"""


def _our_tables() -> list[str]:
    return [
        model._meta.db_table
        for model in apps.get_models(include_auto_created=True)
        if model._meta.app_label in OUR_APPS
        and not model._meta.auto_created  # Django's own many-to-many tables of the User model
        and model._meta.managed
    ]


def _redundant(tables: list[str]) -> list[tuple[str, str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(REDUNDANT, [tables])
        return cursor.fetchall()


def test_no_index_of_ours_is_the_leading_part_of_another():
    assert _redundant(_our_tables()) == []


def test_the_check_finds_an_index_that_another_leads_with():
    """The query is not vacuous: it reports a plain index on the first column of a unique
    constraint, and neither one with another operator class, nor a partial one, nor one on a
    column that only follows in the longer index."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE probe (a uuid, b text, c text, "
            "CONSTRAINT probe_ab UNIQUE (a, b)); "
            "CREATE INDEX probe_a ON probe (a); "
            "CREATE INDEX probe_b ON probe (b); "
            "CREATE INDEX probe_c_pattern ON probe (c text_pattern_ops); "
            "CREATE INDEX probe_c ON probe (c, a); "
            "CREATE INDEX probe_a_partial ON probe (a) WHERE c IS NULL"
        )
    assert _redundant(["probe"]) == [("probe", "probe_a", "probe_ab")]
