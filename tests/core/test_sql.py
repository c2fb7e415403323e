"""The raw-SQL helper: names come from the models, quoted; unknown names fail loudly."""

from datetime import UTC, datetime

import pytest
from django.core.exceptions import FieldDoesNotExist
from django.db import connection
from django.db.models.signals import post_init
from django.utils import timezone

from contracts.models import Contract
from core.sql import (
    Deferring,
    Params,
    insert_select,
    joined,
    leading_models,
    model_from_row,
    models_from_row,
    one_to_many,
    sql,
)
from documents.models import DocumentJob
from tenancy.models import User, UserRole
from tests.factories import ContractFactory, UserFactory


def fetched(text: str, params) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(text, params)
        return cursor.fetchall()


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


@pytest.mark.django_db
def test_a_row_of_several_models_comes_back_as_their_instances(tenant):
    """``{r:columns}`` and ``model_from_row``: two models from one joined row, each field
    converted as a queryset converts it (the JSON field parsed, the decimal and dates typed)."""
    contract = ContractFactory(
        tenant=tenant,
        created_by=UserFactory(tenant=tenant),
        metadata={"tier": "gold", "seats": [1, 2]},
    )
    text = sql(
        "SELECT {u:columns}, {k:columns} FROM {k} JOIN {u} ON {u.pk} = {k.created_by}"
        " WHERE {k.pk} = %s",
        u=User,
        k=Contract,
    )
    (values,) = fetched(text, [contract.pk])
    width = len(User._meta.concrete_fields)
    creator = model_from_row(User, values[:width])
    loaded = model_from_row(Contract, values[width:])
    assert creator == contract.created_by
    assert not creator._state.adding
    expected = Contract.objects.get(pk=contract.pk)
    for field in Contract._meta.concrete_fields:
        assert getattr(loaded, field.attname) == getattr(expected, field.attname), field.name
    assert loaded.metadata == {"tier": "gold", "seats": [1, 2]}
    with pytest.raises(ValueError, match="zip"):
        model_from_row(Contract, values[width:-1])


@pytest.mark.django_db
def test_a_deferring_model_leaves_its_large_fields_to_be_read_when_used(tenant):
    """``Deferring``: the columns leave the fields out, and the instance loads them when read,
    as ``QuerySet.defer`` would."""
    contract = ContractFactory(tenant=tenant, created_by=UserFactory(tenant=tenant), text="Long.")
    loaded = Deferring(Contract, "text", "clause_findings")
    text = sql("SELECT {k:columns} FROM {k} WHERE {k.pk} = %s", k=loaded)
    assert '"text"' not in text
    assert '"clause_findings"' not in text
    (values,) = fetched(text, [contract.pk])
    found = model_from_row(loaded, values)
    assert found.get_deferred_fields() == {"text", "clause_findings"}
    assert found.title == contract.title
    assert found.text == "Long."  # read on access
    with pytest.raises(FieldDoesNotExist):
        Deferring(Contract, "txet")


@pytest.mark.django_db
def test_a_row_model_is_built_like_from_db_and_still_sends_init_signals_when_listened_to(tenant):
    """``model_from_row`` skips ``Model.__init__`` only while nobody listens to its signals: the
    instance is saved and compared as a loaded one, and a ``post_init`` receiver still runs."""
    contract = ContractFactory(tenant=tenant, created_by=UserFactory(tenant=tenant))
    text = sql("SELECT {k:columns} FROM {k} WHERE {k.pk} = %s", k=Contract)
    (values,) = fetched(text, [contract.pk])
    loaded = model_from_row(Contract, values)
    assert (loaded._state.adding, loaded._state.db) == (False, "default")
    assert loaded.created_by == contract.created_by  # a foreign key through its descriptor
    loaded.title = "Renamed"
    loaded.save(update_fields=["title"])
    assert Contract.objects.get(pk=contract.pk).title == "Renamed"

    seen = []

    def record(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(record, sender=Contract)
    try:
        listened = model_from_row(Contract, values)
    finally:
        post_init.disconnect(record, sender=Contract)
    (seen_instance,) = seen
    assert seen_instance is listened
    assert listened.title == contract.title


def test_a_now_default_stays_sql_while_timezone_now_is_patched(monkeypatch):
    """``insert_select`` writes ``now`` for a ``default=timezone.now`` column even while a test
    patches ``timezone.now``: a cached statement must not carry a time evaluated once."""
    monkeypatch.setattr(timezone, "now", lambda: datetime(2000, 1, 1, tzinfo=UTC))
    params, named = Params(), dict.fromkeys(("tenant_id", "kind", "contract_id"), "NULL")
    statement = insert_select(DocumentJob, named, "x", params, now="statement_timestamp()")
    assert statement.count("statement_timestamp()") == 2  # next_attempt_at, created_at
    assert not any(isinstance(value, datetime) for value in params.values())


@pytest.mark.django_db
def test_a_left_join_comes_back_grouped_by_parent_with_its_trailing_values(tenant):
    """``one_to_many``: each parent once, in the rows' order, with its children (none for a
    parent whose child columns are NULL) and each row's trailing values; ``models_from_row``
    splits a row by each model's columns and refuses a row of another width."""
    holder, bystander = UserFactory(tenant=tenant), UserFactory(tenant=tenant)
    legal = UserRole.objects.create(tenant=tenant, user=holder, role="legal")
    ceo = UserRole.objects.create(tenant=tenant, user=holder, role="ceo")
    text = sql(
        "SELECT {u:columns}, {r:columns}, {r.role} = 'ceo' FROM {u} LEFT JOIN {r}"
        " ON {r.user} = {u.pk} WHERE {u.pk} IN (%s, %s) ORDER BY {u.email} = %s DESC, {r.role}",
        u=User, r=UserRole,
    )  # fmt: skip
    rows = fetched(text, [holder.pk, bystander.pk, holder.email])
    grouped = [
        (user.pk, first, [(role.pk, extra) for role, extra in roles])
        for user, first, roles in one_to_many(rows, User, UserRole, trailing=1)
    ]
    assert grouped == [
        (holder.pk, (True,), [(ceo.pk, (True,)), (legal.pk, (False,))]),
        (bystander.pk, (None,), []),
    ]
    user, role = models_from_row(rows[0][:-1], User, UserRole)
    assert (user.pk, role.pk) == (holder.pk, ceo.pk)
    with pytest.raises(ValueError, match="values for"):
        models_from_row(rows[0], User, UserRole)
    [user], rest = leading_models(rows[0], User)
    assert (user.pk, rest[0], rest[-1]) == (holder.pk, ceo.pk, True)
    with pytest.raises(ValueError, match="values for at least"):
        leading_models(rows[0][:3], User)


@pytest.mark.django_db
def test_a_joined_row_is_cached_as_select_related_leaves_it(tenant, django_assert_num_queries):
    """``joined``: the related object is read without a query and is the very object given; a
    row whose key names another object is refused."""
    holder = UserFactory(tenant=tenant)
    role = UserRole.objects.create(tenant=tenant, user=holder, role="legal")
    text = sql("SELECT {r:columns}, {u:columns} FROM {r} JOIN {u} ON {u.pk} = {r.user}"
               " WHERE {r.pk} = %s", r=UserRole, u=User)  # fmt: skip
    loaded, user = models_from_row(fetched(text, [role.pk])[0], UserRole, User)
    joined(loaded, "user", user)
    with django_assert_num_queries(0):
        assert loaded.user is user
        assert loaded.user_id == holder.pk
    with pytest.raises(ValueError, match="does not refer to"):
        joined(loaded, "user", UserFactory(tenant=tenant))
    assert loaded.user is user
