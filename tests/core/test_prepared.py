"""``core.sql.Prepared``: planned once per connection, run by name, under the caller's scope."""

import uuid
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import DataError, connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.models import Contract
from core import rls
from core.sql import Prepared, sql
from tenancy.models import User
from tests.factories import ContractFactory, UserFactory

EMAIL = Prepared(
    sql("SELECT {u.email} FROM {u} WHERE {u.pk} = %(user)s AND {u.email} LIKE '%%@%%'", u=User)
)
# Every contract the scope may see, repeated parameter included.
CONTRACTS = Prepared(
    sql(
        "SELECT {k.pk} FROM {k} WHERE {k.created_at} <= %(at)s OR {k.created_at} > %(at)s"
        " ORDER BY {k.pk}",
        k=Contract,
    )
)


def _run(statement: Prepared, **params) -> list:
    with connection.cursor() as cursor:
        statement.execute(cursor, params)
        return cursor.fetchall()


def _on_server(statement: Prepared) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE name = %s", [statement.name]
        )
        return cursor.fetchone()[0] == 1


def _prepares(statement: Prepared, **params) -> bool:
    """Runs ``statement``; whether that prepared it on the connection's session."""
    before = _on_server(statement)
    _run(statement, **params)
    return not before and _on_server(statement)


@pytest.mark.django_db
def test_prepared_once_then_run_by_name_with_named_parameters(user):
    # A text of this test's own: no earlier test on the connection prepared it.
    statement = Prepared(
        sql("SELECT {u.email}, %(tag)s::text FROM {u} WHERE {u.pk} = %(user)s", u=User)
    )
    with CaptureQueriesContext(connection) as first:
        assert _prepares(statement, tag="first", user=user.pk)
    with CaptureQueriesContext(connection) as second:
        assert _run(statement, user=user.pk, tag="second") == [(user.email, "second")]
    # The PREPARE is the connection's set-up, not one of the caller's queries.
    sent = " ".join(query["sql"] for query in first.captured_queries)
    assert f"EXECUTE {statement.name}(" in sent
    assert "PREPARE" not in sent
    (run,) = second.captured_queries
    assert run["sql"] == f"EXECUTE {statement.name}('second', '{user.pk}')"  # no casts to resolve


def test_positional_parameters_are_refused():
    with pytest.raises(ValueError, match="named parameters"):
        Prepared("SELECT %s")


@pytest.mark.django_db(transaction=True)
def test_a_statement_prepared_in_a_rolled_back_transaction_is_still_there(user):
    """PREPARE is not undone by a rollback: the connection must not prepare it twice."""
    statement = Prepared(sql("SELECT {u.pk} FROM {u} WHERE {u.pk} = %(user)s", u=User))
    with transaction.atomic():
        assert _prepares(statement, user=user.pk)
        transaction.set_rollback(True)
    with transaction.atomic():
        assert _run(statement, user=user.pk) == [(user.pk,)]


@pytest.mark.django_db(transaction=True)
def test_a_new_connection_prepares_again(user):
    assert _run(EMAIL, user=user.pk) == [(user.email,)]
    assert not _prepares(EMAIL, user=user.pk)
    connection.close()
    assert _prepares(EMAIL, user=user.pk)
    assert _run(EMAIL, user=user.pk) == [(user.email,)]


@pytest.mark.django_db
def test_the_plan_is_shared_but_each_run_sees_its_own_scope(tenant, other_tenant):
    """The row-level security policies apply at each run: a plan made (and made generic by
    repeated runs) in one tenant's scope shows another tenant only its own rows."""
    mine = ContractFactory(tenant=tenant, created_by=UserFactory(tenant=tenant))
    with rls.bypass("test fixture: another tenant's contract"):
        theirs = ContractFactory(tenant=other_tenant, created_by=UserFactory(tenant=other_tenant))
    at = mine.created_at
    for _ in range(7):  # past the runs after which PostgreSQL may keep a generic plan
        assert _run(CONTRACTS, at=at) == [(mine.pk,)]
    with rls.tenant_scope(other_tenant):
        assert _run(CONTRACTS, at=at) == [(theirs.pk,)]
    assert _run(CONTRACTS, at=at) == [(mine.pk,)]


ARRAYS = Prepared(
    "SELECT %(texts)s::text[], %(ids)s::uuid[], %(numbers)s::int[], %(days)s::date[],"
    " %(times)s::timestamptz[], %(ratios)s::float8[], %(id)s::uuid,"
    " cardinality(%(texts)s::text[])"
)
AWKWARD = [
    "plain",
    "",
    "NULL",
    "null",
    None,
    'a "quoted" word',
    "back\\slash\\",
    "comma, {braces} and 'quotes'",
    "  spaced  ",
    "línea\nnueva\ttab",
    '\\"',
]


def _arrays(**params) -> tuple:
    values = {"texts": [], "ids": [], "numbers": [], "days": [], "times": [], "ratios": []}
    return _run(ARRAYS, **{**values, "id": None, **params})[0]


@pytest.mark.django_db
def test_lists_and_uuids_go_as_literals_and_come_back_exactly():
    ids, the_id = [uuid.uuid4(), None, uuid.uuid4()], uuid.uuid4()
    days = [date(2026, 1, 31), None]
    times = [
        datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=UTC),
        datetime(2026, 3, 29, 3, 30, tzinfo=ZoneInfo("Europe/Paris")),
        None,
    ]
    ratios = [0.1, None]  # not among the plain values: left to the driver
    assert _arrays(
        texts=AWKWARD,
        ids=ids,
        numbers=[1, -2, None],
        days=days,
        times=times,
        ratios=ratios,
        id=the_id,
    ) == (AWKWARD, ids, [1, -2, None], days, times, ratios, the_id, len(AWKWARD))
    assert _arrays() == ([], [], [], [], [], [], None, 0)


def test_only_plain_lists_and_uuids_are_rewritten():
    the_id = uuid.uuid4()
    nested, ratios = [["a"], ["b"]], [0.5]
    bound = Prepared.bound(
        {
            "texts": ['a"b', None],
            "id": the_id,
            "days": [date(2026, 1, 31)],
            "nested": nested,
            "ratios": ratios,
            "n": 3,
        }
    )
    assert bound == {
        "texts": '{"a\\"b",NULL}',
        "id": str(the_id),
        "days": '{"2026-01-31"}',
        "nested": nested,
        "ratios": ratios,
        "n": 3,
    }


@pytest.mark.django_db
def test_a_text_that_cannot_be_sent_fails_as_it_would_without_the_literal():
    with pytest.raises(DataError, match="NUL") as plain, connection.cursor() as cursor:
        cursor.execute("SELECT %s::text", ["a\x00b"])
    with pytest.raises(DataError, match="NUL") as literal:
        _arrays(texts=["a\x00b"])
    assert str(literal.value) == str(plain.value)


@pytest.mark.django_db
def test_a_lone_surrogate_fails_as_it_would_without_the_literal():
    """Not UTF-8: psycopg refuses it before sending, with or without the literal (the API
    refuses it first, config.validators)."""
    with pytest.raises(UnicodeEncodeError) as plain, connection.cursor() as cursor:
        cursor.execute("SELECT %s::text", ["a\ud800b"])
    with pytest.raises(UnicodeEncodeError) as literal:
        _arrays(texts=["a\ud800b"])
    assert literal.value.reason == plain.value.reason


@pytest.mark.django_db
@settings(max_examples=60, deadline=None)
# Texts PostgreSQL can hold: UTF-8 (no lone surrogates), no NUL; both refused above.
@given(
    st.lists(st.one_of(st.none(), st.text(st.characters(codec="utf-8", exclude_characters="\x00"))))
)
def test_any_list_of_texts_comes_back_as_sent(texts):
    with transaction.atomic():  # a failing example must not abort the test's transaction
        assert _arrays(texts=texts)[0] == texts


NAMES_BY_KEY = Prepared(
    sql(
        "UPDATE {u} SET {u.full_name:column} = v.name FROM unnest(%(keys)s::uuid[], "
        "%(names)s::text[]) AS v (key, name) WHERE {u.pk} = v.key",
        u=User,
    )
)


def test_each_statement_is_planned_once_for_its_connection(user):
    """A statement whose arrays' lengths PostgreSQL cannot know would get a plan of its own on
    every run (a custom plan looks cheaper than the generic one); the session plans it once."""
    for number in range(7):
        with connection.cursor() as cursor:
            NAMES_BY_KEY.execute(cursor, {"keys": [user.pk], "names": [f"Name {number}"]})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = %s",
            [NAMES_BY_KEY.name],
        )
        assert cursor.fetchone() == (7, 0)
    assert User.objects.get(pk=user.pk).full_name == "Name 6"
