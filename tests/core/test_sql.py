"""The raw-SQL helper: names come from the models, quoted; unknown names fail loudly."""

import pytest
from django.db import connection

from core.sql import sql
from tenancy.models import User, UserRole


def test_tables_and_columns_come_from_the_models_quoted():
    text = sql(
        "SELECT {r.user} FROM {r} JOIN {u} ON {u.pk} = {r.user} WHERE {r.role} = %s",
        r=UserRole,
        u=User,
    )
    assert text == (
        'SELECT r."user_id" FROM "tenancy_userrole" r JOIN "tenancy_user" u'
        ' ON u."id" = r."user_id" WHERE r."role" = %s'
    )


def test_bare_names_for_column_lists_and_doubled_braces_for_literals():
    text = sql("INSERT INTO {r:table} ({r.role:column}) SELECT '{{}}'::jsonb", r=UserRole)
    assert text == """INSERT INTO "tenancy_userrole" ("role") SELECT '{}'::jsonb"""


@pytest.mark.parametrize("template", ["{r.no_such_field}", "{r.tenant:bogus}", "{r:bogus}"])
def test_unknown_names_and_formats_fail(template):
    with pytest.raises(Exception):  # noqa: B017, PT011 (FieldDoesNotExist or ValueError)
        sql(template, r=UserRole)


@pytest.mark.django_db
def test_the_text_runs_with_values_as_parameters(user):
    with connection.cursor() as cursor:
        cursor.execute(sql("SELECT {u.email} FROM {u} WHERE {u.pk} = %s", u=User), [user.pk])
        assert cursor.fetchone() == (user.email,)
