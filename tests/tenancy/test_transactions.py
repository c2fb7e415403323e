"""The backend's transactions: BEGIN travels with the first statement, COMMIT with the last
writes, and a transaction Django opens is always one on the server (``tenancy.rls_backend``)."""

import time
import uuid
from contextlib import contextmanager

import pytest
from django.db import IntegrityError, ProgrammingError, connection, transaction
from django.db.backends.postgresql.psycopg_any import IsolationLevel

from core import pipeline
from tenancy.models import UserRole

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def sent():
    """Every query string the connection sends, as it goes on the wire (innermost wrapper)."""
    strings: list[str] = []

    def tap(execute, sql, params, many, context):
        strings.append(sql)
        return execute(sql, params, many, context)

    connection.ensure_connection()
    connection.execute_wrappers.append(tap)
    try:
        yield strings
    finally:
        connection.execute_wrappers.remove(tap)


def one(statement: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone()[0]


def test_begin_travels_with_the_first_statement_and_the_block_is_one_transaction():
    with sent() as strings, transaction.atomic():
        started = one("SELECT now()")
        time.sleep(0.01)
        assert one("SELECT now()") == started  # now() is the transaction's start
        assert one("SELECT clock_timestamp()") > started
    assert strings[0].startswith("BEGIN; ")
    assert not any(string.startswith("BEGIN") for string in strings[1:])
    assert strings[-1] == "COMMIT"
    assert len(strings) == 4  # no round trip of its own for BEGIN


def test_a_block_that_sends_nothing_sends_no_begin_and_no_commit():
    with sent() as strings, transaction.atomic():
        pass
    assert strings == []


def test_a_rolled_back_block_undoes_its_statements(user):
    def failing_service():
        with transaction.atomic():
            UserRole.objects.create(tenant=user.tenant, user=user, role="legal")
            raise RuntimeError("the service failed")

    with pytest.raises(RuntimeError):
        failing_service()
    assert not UserRole.objects.filter(user=user).exists()


def test_after_a_first_statement_that_never_ran_the_block_is_still_one_transaction():
    """A syntax error is found before anything in the string runs, BEGIN included: the next
    statement must open the transaction, not run in autocommit."""

    def block_going_on_after_a_syntax_error():
        with transaction.atomic():
            with pytest.raises(ProgrammingError), connection.cursor() as cursor:
                cursor.execute("SELEC 1")
            with connection.cursor() as cursor:
                cursor.execute("CREATE TEMP TABLE rolled_back_probe (x int)")
            raise RuntimeError("and the block rolls back")

    with pytest.raises(RuntimeError):
        block_going_on_after_a_syntax_error()
    assert one("SELECT to_regclass('pg_temp.rolled_back_probe')") is None


def test_manual_transactions_open_again_after_each_commit(user):
    connection.set_autocommit(False)
    try:
        UserRole.objects.create(tenant=user.tenant, user=user, role="legal")
        connection.commit()
        UserRole.objects.create(tenant=user.tenant, user=user, role="finance")
        connection.rollback()  # the second transaction: its write only
    finally:
        connection.set_autocommit(True)
    assert set(UserRole.objects.filter(user=user).values_list("role", flat=True)) == {"legal"}


def test_the_last_writes_travel_with_the_commit(user):
    with sent() as strings, pipeline.atomic():
        pipeline.insert([UserRole(tenant=user.tenant, user=user, role="legal")])
    assert len(strings) == 1
    assert strings[0].startswith("BEGIN; ")
    assert "EXECUTE" in strings[0]  # the INSERT, prepared (core.sql.Prepared)
    assert strings[0].endswith("COMMIT")
    assert UserRole.objects.filter(user=user, role="legal").exists()


def test_a_commit_that_fails_rolls_back_and_the_connection_goes_on(user):
    """A deferred foreign key is checked by the COMMIT: it fails, nothing is kept, and the next
    transaction starts clean."""
    orphan = UserRole(tenant=user.tenant, user_id=uuid.uuid4(), role="legal")

    def transition_writing_an_orphan():
        with pipeline.atomic():
            pipeline.insert([UserRole(tenant=user.tenant, user=user, role="finance")])
            pipeline.insert([orphan])

    with pytest.raises(IntegrityError):
        transition_writing_an_orphan()
    assert not UserRole.objects.filter(tenant=user.tenant).exists()
    with transaction.atomic():
        UserRole.objects.create(tenant=user.tenant, user=user, role="ceo")
    assert list(UserRole.objects.filter(user=user).values_list("role", flat=True)) == ["ceo"]


def test_the_configured_isolation_level_is_the_transactions(monkeypatch):
    options = {
        **connection.settings_dict["OPTIONS"],
        "isolation_level": IsolationLevel.SERIALIZABLE,
    }
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", options)
    with transaction.atomic():
        assert one("SHOW transaction_isolation") == "serializable"
    monkeypatch.undo()
    with transaction.atomic():
        assert one("SHOW transaction_isolation") == "read committed"


def test_writes_carried_behind_a_queued_savepoint_run_in_the_scope(user):
    """The transaction's only round trip starts with a queued SAVEPOINT: it still needs the
    tenant's scope in front of it (a savepoint alone does not)."""
    with sent() as strings, pipeline.atomic():
        pipeline.savepoint("queued_first")
        pipeline.insert([UserRole(tenant=user.tenant, user=user, role="legal")])
    assert strings[0].startswith("BEGIN; SELECT set_config(")
    assert UserRole.objects.filter(user=user, role="legal").exists()


def test_autocommit_cannot_be_turned_on_inside_an_open_transaction(user):
    """As psycopg refuses it: the transaction would stay open, and everything after it in it."""
    connection.set_autocommit(False)
    try:
        UserRole.objects.create(tenant=user.tenant, user=user, role="legal")
        with pytest.raises(ProgrammingError, match="inside a transaction"):
            connection.set_autocommit(True)
        connection.rollback()
    finally:
        connection.set_autocommit(True)
    assert not UserRole.objects.filter(user=user).exists()
