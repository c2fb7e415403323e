"""Writes that ride along with the next statement: one round trip instead of one per write.

A transition of the approvals orchestrator writes a handful of rows (the decided approval, its
stage, the next stage's approvals, the instance, the audit rows); a new contract its record and
first revision too. Sent one by one, each is a round trip, and
on a busy machine the waits between them cost more than the statements themselves
(bench/bench_process.py). ``deferred_writes()`` queues them instead: each write is compiled by the
ORM as usual (``insert``, ``save``, ``update``), and the queue is sent in front of whatever
statement the connection executes next, in the same query string, so every later read of the
transaction sees them, and the writes keep their order; their values stay query parameters (a
carrying statement's named ones become positional). What is still queued when the block ends is
sent then, in one round trip; with ``atomic()`` it travels with the COMMIT (or the RELEASE of the
block's savepoint) instead. ``savepoint()`` queues a SAVEPOINT the same way (the signal
receivers' isolation, ``approvals.signals.dispatch``): it costs no round trip of its own, and none
at all when the receivers write nothing; ``guard()`` keeps the receivers' queued writes isolated.

Streaming: once the transaction is open on the server with the current scope (its first
statement has been sent), a queued write is sent at once, without waiting for its result, in
libpq's pipeline mode (psycopg's ``Connection.pipeline()``): PostgreSQL runs it while Python
builds the next one, instead of running them all while Python waits at the COMMIT. The next
statement that needs an answer (a read, the COMMIT) joins the same pipeline and waits for
everything in it: still one round trip, in which the server has less left to do
(bench/bench_process.py). A block's end sends nothing then, since its writes are on their way.
Before the transaction is open, writes queue as above and travel with the statement that opens
it (its BEGIN and scope make it a string of several statements, which a pipeline refuses).
Streaming costs both sides a little CPU (a message per write, and the server wakes for each):
the database setting ``STREAM_WRITES`` (``DATABASE_STREAM_WRITES=0``) turns it off, for a machine
that runs the web and PostgreSQL on the same few cores at full load (docs/operations.md).

A failing write raises from the statement that carried it (or that waited for it), inside the
same transaction, so the transaction fails exactly as if the write had been sent alone. The
queue is dropped when the block exits with an exception (the transaction is rolling back), and
by a ROLLBACK. Queued writes have no entry of their own in ``connection.queries``: it lists round
trips, each with the text that was sent (the carried writes included; not the streamed ones,
which were sent before it, and which Django's SQL log lists as ``(streamed)``).

The queue is sent by an ``execute_wrapper`` placed first on the connection: outside the row-level
security scope injector, which therefore still puts the scope's ``set_config`` first.
"""

import functools
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from django.contrib.postgres.fields import ArrayField
from django.db import DatabaseError, connection, transaction
from django.db.models import Model, QuerySet
from django.db.models.signals import pre_save
from django.db.models.sql import InsertQuery, UpdateQuery
from psycopg.pq import TransactionStatus

from core.rls import current_scope
from core.sql import Prepared, default_connection, quote


@dataclass(frozen=True)
class _Guard:
    """Receivers' writes in the queue (``guard``): they end before statement ``end`` and follow
    ``SAVEPOINT savepoint``; ``recover`` runs the receivers again, each on its own."""

    savepoint: str
    end: int
    recover: Callable[[], None]

    def shifted(self, offset: int) -> "_Guard":
        return _Guard(self.savepoint, self.end - offset, self.recover)


class _Queue:
    """The statements of one connection waiting for the next round trip, or in flight."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple]] = []
        self.guards: list[_Guard] = []
        self.depth = 0
        self.carried: Counter = Counter()
        # Streaming (see the module docstring): ``statements[:sent]`` are in the pipeline, which
        # ``stream`` holds open (psycopg's ``Connection.pipeline()``); ``failure`` is what one
        # of them raised, to be raised at the round trip that waits for them.
        self.sent = 0
        self.stream = None
        self.cursor = None
        self.failure: Exception | None = None

    def clear(self) -> None:
        """Drop what is queued and stop streaming (the transaction, or the savepoint the
        statements follow, is being rolled back): what failed in flight is rolled back too."""
        self._close_stream(raise_failure=False)
        self.statements.clear()
        self.guards.clear()
        self.sent = 0

    def take(self) -> tuple[list[tuple[str, tuple]], list[_Guard], int]:
        """The queued statements, their guards and how many are in flight; the queue emptied
        (the stream, if any, stays open until the round trip that waits for it)."""
        taken = list(self.statements), list(self.guards), self.sent
        self.statements.clear()
        self.guards.clear()
        self.sent = 0
        return taken

    def add(self, wrapper, sql: str, params: tuple) -> None:
        """Queue a statement, and send it at once when the connection can stream it."""
        self.statements.append((sql, params))
        if self.failure is None and _can_stream(wrapper):
            self._send_queued(wrapper)

    def _send_queued(self, wrapper) -> None:
        """Put what is queued and not yet sent on the wire."""
        while self.sent < len(self.statements) and self.failure is None:
            self.sent += 1
            self._stream(wrapper, *self.statements[self.sent - 1])

    def _stream(self, wrapper, statement: str, params: tuple) -> None:
        """Send ``statement`` in the stream (opened here), without waiting for its result.
        Django's SQL log gets it as it gets every statement (no round trip of its own, so no
        entry in ``connection.queries``)."""
        self.carried[_keyword(statement)] += 1
        if wrapper.queries_logged:
            _sql_log.debug(
                "(streamed) %s; args=%s; alias=%s", statement, params, wrapper.alias,
                extra={"sql": statement, "params": params, "alias": wrapper.alias},
            )  # fmt: skip
        try:
            if self.stream is None:
                self.stream = wrapper.connection.pipeline()
                self.stream.__enter__()
                self.cursor = wrapper.connection.cursor()
            self.cursor.execute(statement, params)
        except wrapper.Database.Error as failure:  # an earlier statement's, arriving now
            self.failure = failure

    def _close_stream(self, *, raise_failure: bool) -> None:
        """End the stream: wait for the results of everything in flight (a Sync). The first
        failure among them is raised, unless ``raise_failure`` is False (rolling back)."""
        stream, failure = self.stream, self.failure
        if stream is None:
            return
        self.stream = self.cursor = self.failure = None
        try:
            stream.__exit__(None, None, None)
        except psycopg.Error as arrived:
            failure = failure or arrived
        if failure is not None and raise_failure:
            raise failure

    def __call__(self, execute, sql, params, many, context):
        if not self.statements:
            return execute(sql, params, many, context)
        if not isinstance(sql, str):  # a psycopg.sql.Composed
            sql = sql.as_string(context["cursor"].cursor)
        if sql.lstrip().upper().startswith("ROLLBACK"):
            self.clear()  # rolled back: what is queued never happened
            return execute(sql, params, many, context)
        statements, guards, sent = self.take()
        if many or getattr(context["cursor"].cursor, "name", None):
            # executemany would repeat the queue per row; a named cursor takes one statement.
            # So the queue goes first, in a round trip of its own, on a plain cursor.
            wrapper = context["connection"]
            self._send(_on_new_cursor(wrapper), context, statements, guards, None, (), False, sent)
            return execute(sql, params, many, context)
        sql, params = _positional(sql, params)
        return self._send(execute, context, statements, guards, sql, params, many, sent)

    def _send(self, execute, context, statements, guards, sql, params, many, sent=0):
        """``statements`` (the first ``sent`` of them already in flight) and ``sql`` (a COMMIT
        too; None: the last of them carries the others), waited for in one round trip. When it
        fails at or after a guard's savepoint, the guard's receivers are rolled back and run
        again, each on its own (``guard``), and what followed them is sent again."""
        wrapper = context["connection"]
        try:
            with wrapper.wrap_database_errors:
                if self.stream is not None:
                    return self._send_streamed(execute, context, statements[sent:], sql, params)
                if sql is None:
                    if not statements:
                        return None
                    statements, sql, params = _with_carrier(statements, guards)
                text = ";\n".join([*(statement for statement, _ in statements), sql])
                values = [value for _, values in statements for value in values]
                self.carried.update(_keyword(statement) for statement, _ in statements)
                return execute(text, [*values, *params], many, context)
        except DatabaseError:
            self._close_stream(raise_failure=False)
            if not guards or not _rolled_back_to(context, guards[0].savepoint):
                raise
        first = guards[0]
        first.recover()
        rest = [guard.shifted(first.end) for guard in guards[1:]]
        return self._send(execute, context, statements[first.end :], rest, sql, params, many)

    def _send_streamed(self, execute, context, unsent, sql, params):
        """The rest of the queue and ``sql`` (if any) in the stream, then the wait for all of
        it. ``sql`` joins the stream only as it is (a scope or BEGIN put in front would make it
        two statements, which a pipeline refuses); otherwise it is sent after the wait."""
        wrapper = context["connection"]
        for statement, values in unsent:
            if self.failure is None:
                self._stream(wrapper, statement, values)
        if sql is None:
            self._close_stream(raise_failure=True)
            return None
        result, carried = None, self.failure is None and _can_stream(wrapper)
        if carried:
            result = execute(sql, params, False, context)
        self._close_stream(raise_failure=True)
        return result if carried else execute(sql, params, False, context)


def _on_new_cursor(wrapper):
    """An ``execute`` for ``_Queue._send`` that runs a statement on a new cursor of ``wrapper``,
    through all of its wrappers (the queue's passes it on: it is empty by then)."""

    def execute(sql, params, many, context):
        with wrapper.cursor() as cursor:
            cursor.execute(sql, params)

    return execute


def _can_stream(wrapper) -> bool:
    """Whether a statement sent now runs as it would in the next round trip: in the open
    transaction, which already holds the current scope (sent with its first statement)."""
    return (
        wrapper.stream_writes
        and not wrapper.transaction_unopened
        and wrapper.rls_scope_sent == current_scope()
        and wrapper.connection is not None
        and wrapper.connection.pgconn.transaction_status in _STREAMABLE
        and not wrapper.get_autocommit()
    )


_STREAMABLE = (TransactionStatus.INTRANS, TransactionStatus.ACTIVE)


def _keyword(statement: str) -> str:
    """A statement's first keyword, for the tally of carried statements (``carried``)."""
    return statement.split(None, 1)[0].upper()


# Django's SQL log (DEBUG, or a test's CaptureQueriesContext).
_sql_log = logging.getLogger("django.db.backends")


def _rolled_back_to(context, savepoint: str) -> bool:
    """``ROLLBACK TO SAVEPOINT`` after a failure: False when the savepoint is not there (the
    failure came before it ran, or ended the transaction)."""
    wrapper = context["connection"]
    try:
        context["cursor"].cursor.execute(wrapper.ops.savepoint_rollback_sql(savepoint))
    except wrapper.Database.Error:
        return False
    wrapper._forget_scope()  # a set_config sent after the savepoint is undone too
    return True


_PLACEHOLDER = re.compile(r"%%|%\((\w+)\)s")


def _positional(sql: str, params) -> tuple[str, list]:
    """``sql`` and ``params`` with ``%s`` placeholders only, to follow the queue's: named ones
    (``%(name)s``) in their order of appearance; without parameters, literal ``%`` escaped."""
    if params is None:
        return sql.replace("%", "%%"), []
    if not isinstance(params, Mapping):
        return sql, list(params)
    text, names = _named_order(sql)
    return text, [params[name] for name in names]


@functools.lru_cache(maxsize=256)
def _named_order(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` with its named placeholders made ``%s``, and their names in order: the same few
    statements carry the queue again and again."""
    names = []

    def positional(match) -> str:
        if match.group(1) is None:
            return "%%"
        names.append(match.group(1))
        return "%s"

    return _PLACEHOLDER.sub(positional, sql), tuple(names)


def _queue() -> _Queue:
    """The default connection's queue, made (and put first among its wrappers) on first use."""
    wrapper = default_connection()
    queue = _queue_of(wrapper)
    if queue is None:
        queue = wrapper._pipeline_queue = _Queue()
        wrapper.execute_wrappers.insert(0, queue)
    return queue


def _queue_of(wrapper) -> _Queue | None:
    """``wrapper``'s queue, or None when nothing on that connection ever queued."""
    return getattr(wrapper, "_pipeline_queue", None)


@contextmanager
def deferred_writes(*, until_end_of_transaction: bool = False) -> Iterator[None]:
    """Within the block, ``insert``/``save``/``update``/``savepoint`` queue; nested blocks share
    the outermost one's queue, which is sent when it ends (or dropped on an exception).

    ``until_end_of_transaction``: what is still queued when the block ends is left for the
    statement that ends the enclosing ``transaction.atomic`` block right after it (the COMMIT, or
    the RELEASE of its savepoint), in the same round trip (``atomic``)."""
    queue = _queue()
    queue.depth += 1
    try:
        yield
    except BaseException:
        if queue.depth == 1:
            queue.clear()
        raise
    else:
        if queue.depth == 1 and queue.statements and not until_end_of_transaction:
            _flush(queue)
    finally:
        queue.depth -= 1


@contextmanager
def atomic() -> Iterator[None]:
    """``transaction.atomic()`` whose writes queue (``deferred_writes``) and travel with the
    COMMIT (or the RELEASE of its savepoint) that ends it: the last writes of a transition cost
    no round trip of their own. A write that fails there fails the ending statement, which rolls
    the block back as a failure inside it would."""
    with transaction.atomic(), deferred_writes(until_end_of_transaction=True):
        yield


def _flush(queue: _Queue) -> None:
    """Send the queue now, in one round trip; when it is all in flight already, the next
    round trip waits for it."""
    if queue.stream is not None and queue.failure is None and queue.sent == len(queue.statements):
        return
    queue.statements[:], carrier, params = _with_carrier(queue.statements, queue.guards)
    with connection.cursor() as cursor:
        cursor.execute(carrier, params)


def _with_carrier(statements: list, guards: list) -> tuple[list, str, tuple]:
    """The statements to carry, and the statement that carries them with its parameters: the
    last one, unless it is a guarded receiver's write (after a failure it would be sent again
    once the receivers ran again): then the RELEASE of their savepoint. The guards' positions
    hold for the statements carried."""
    if guards and guards[-1].end == len(statements):
        return statements, connection.ops.savepoint_commit_sql(guards[-1].savepoint), ()
    *carried, (last, params) = statements
    return carried, last, params


def _enqueue(sql: str, params) -> None:
    queue = _queue()
    if not queue.depth:
        raise RuntimeError("core.pipeline writes must run inside deferred_writes()")
    if sql:
        queue.add(default_connection(), sql, tuple(params))


def insert(objs: Iterable[Model]) -> None:
    """``bulk_create`` of new rows whose keys are set (UUIDs), without RETURNING."""
    objs = list(objs)
    if not objs:
        return
    model = objs[0]._meta.model
    QuerySet(model)._prepare_for_bulk_create(objs)
    fields = _inserted_fields(model)
    values = [field.pre_save(obj, True) for obj in objs for field in fields]
    by_rows = _insert_rows(model, len(objs)) if len(objs) <= _PREPARED_ROWS else None
    if by_rows is None or any(_compiled_only(value) for value in values):
        query = InsertQuery(model)
        query.insert_values(fields, objs)
        for sql, params in query.get_compiler(connection=default_connection()).as_sql():
            _enqueue(sql, params)
    else:
        execute(by_rows, _field_values(fields * len(objs), values))
    for obj in objs:
        obj._state.adding, obj._state.db = False, connection.alias


# Inserts of more rows (a stage naming many people) go through the compiler: one prepared
# statement per model and number of rows, a handful per connection.
_PREPARED_ROWS = 8


def _inserted_fields(model: type[Model]) -> list:
    return [field for field in model._meta.concrete_fields if not field.generated]


# Raw SQL: compiling ``bulk_create``'s INSERT, a placeholder per row and column, was the largest
# part of the client's time in writing a new contract and its workflow (bench/bench_process.py).
# The statement is made once per model and number of rows and prepared once per connection; each
# value is prepared by its field as the ORM's compiler prepares it (``get_db_prep_save``), after
# the field's ``pre_save`` (``auto_now_add``), as the compiler calls it.
@functools.cache
def _insert_rows(model: type[Model], rows: int) -> Prepared | None:
    """The INSERT of ``rows`` rows (``%(v0)s``, ... row by row), or None when a field needs a
    placeholder of its own, which only the compiler writes."""
    fields = _inserted_fields(model)
    if any(_needs_own_placeholder(field) for field in fields):
        return None
    columns = ", ".join(quote(field.column) for field in fields)
    width = len(fields)
    values = ", ".join(
        "(" + ", ".join(f"%(v{row * width + column})s" for column in range(width)) + ")"
        for row in range(rows)
    )
    table = quote(model._meta.db_table)
    return Prepared(f"INSERT INTO {table} ({columns}) VALUES {values}")  # noqa: S608


def create(obj: Model) -> None:
    """``obj.save()`` of a new row: ``insert`` after the ``pre_save`` signal ``Model.save``
    sends (``insert`` is ``bulk_create``, which sends none)."""
    _send_pre_save(obj, update_fields=None)
    insert([obj])


def save(obj: Model, update_fields: list[str]) -> None:
    """``obj.save(update_fields=...)``: the ``pre_save`` signal and the fields' own ``pre_save``
    (``auto_now``) run as in ``Model.save``; ``post_save`` has no receiver here."""
    meta = obj._meta
    _send_pre_save(obj, update_fields=frozenset(update_fields))
    by_key, fields = _update_by_key(meta.model, tuple(update_fields))
    values = [field.pre_save(obj, False) for field in fields]
    if by_key is None or any(_compiled_only(value) for value in values):
        _update(
            meta.model._base_manager.filter(pk=obj.pk),
            [(field, None, value) for field, value in zip(fields, values, strict=True)],
        )
        return
    params = _field_values(fields, values)
    params["key"] = meta.pk.get_db_prep_value(obj.pk, default_connection())
    execute(by_key, params)


def _field_values(fields: list, values: list) -> dict:
    """``{"v0": ..., "v1": ...}``: each value prepared by its field as the ORM's compiler
    prepares it (``get_db_prep_save``), for the prepared statements below."""
    wrapper = default_connection()
    return {
        f"v{number}": field.get_db_prep_save(value, wrapper)
        for number, (field, value) in enumerate(zip(fields, values, strict=True))
    }


def _compiled_only(value) -> bool:
    """A value only the ORM's compiler writes: an expression (``F()``) or a model instance."""
    return hasattr(value, "resolve_expression") or hasattr(value, "prepare_database_save")


# Raw SQL: building and compiling a queryset for each save was most of the client's time in
# writing a decision, and planning the UPDATE more of the server's than running it
# (bench/bench_process.py). The statement is made once per model and fields and prepared once per
# connection; each value is prepared by its field as the ORM's compiler prepares it
# (``get_db_prep_save``).
@functools.cache
def _update_by_key(model: type[Model], names: tuple[str, ...]) -> tuple[Prepared | None, list]:
    """The UPDATE of one row by its key (``%(key)s``) setting ``names`` (``%(v0)s``, ...; None
    when a field needs a placeholder of its own, which only the compiler writes), and their
    fields."""
    meta = model._meta
    fields = [meta.get_field(name) for name in names]
    if any(_needs_own_placeholder(field) for field in fields):
        return None, fields
    assignments = ", ".join(
        f"{quote(field.column)} = %(v{number})s" for number, field in enumerate(fields)
    )
    table, key = quote(meta.db_table), quote(meta.pk.column)
    return Prepared(f"UPDATE {table} SET {assignments} WHERE {key} = %(key)s"), fields  # noqa: S608


def _needs_own_placeholder(field) -> bool:
    """Whether only the compiler writes ``field``'s values: its placeholder is more than a
    parameter. An array's is a cast to the column's type, which a prepared statement's parameter
    for that column already has."""
    return hasattr(field, "get_placeholder") and not isinstance(field, ArrayField)


def _send_pre_save(obj: Model, update_fields) -> None:
    pre_save.send(
        sender=obj._meta.model, instance=obj, raw=False, using=connection.alias,
        update_fields=update_fields,
    )  # fmt: skip


def update(queryset: QuerySet, **values) -> None:
    """``queryset.update(**values)``."""
    meta = queryset.model._meta
    _update(queryset, [(meta.get_field(name), None, value) for name, value in values.items()])


def _update(queryset: QuerySet, values) -> None:
    query = queryset.query.chain(UpdateQuery)
    query.add_update_fields(values)
    query.annotations = {}
    _enqueue(*query.get_compiler(connection=default_connection()).as_sql())


def execute(prepared: Prepared, params: Mapping) -> None:
    """Queue a prepared statement (``core.sql.Prepared``) with its named parameters. Its PREPARE,
    the first time on a connection, is sent at once: it reads and writes no rows."""
    _enqueue(*_positional(prepared.statement(default_connection()), Prepared.bound(params)))


def carried_statements() -> Counter:
    """For measurements (bench/bench_process.py): the statements this connection's queue has
    sent, by first keyword; each travelled in the round trip of another statement."""
    return Counter(_queue().carried)


def active() -> bool:
    """Whether writes queue here (inside ``deferred_writes()``)."""
    return _queue().depth > 0


def write(prepared: Prepared, params: Mapping) -> None:
    """A prepared statement that writes: queued inside ``deferred_writes()`` (``execute``),
    else run at once."""
    if active():
        execute(prepared, params)
    else:
        prepared.run(params)


def queued(wrapper) -> bool:
    """Whether ``wrapper`` (a connection) holds queued statements (its backend's COMMIT)."""
    queue = _queue_of(wrapper)
    return bool(queue and queue.statements)


def discard(wrapper) -> None:
    """Drop what ``wrapper`` holds queued (its backend's ROLLBACK when nothing was sent)."""
    queue = _queue_of(wrapper)
    if queue is not None:
        queue.clear()


def savepoint(sid: str) -> None:
    """Queue ``SAVEPOINT sid`` (see the module docstring); roll back to it with
    ``connection.savepoint_rollback(sid)``, which runs at once."""
    _enqueue(connection.ops.savepoint_create_sql(sid), ())


def guard(sid: str, recover: Callable[[], None]) -> None:
    """The statements queued since ``SAVEPOINT sid`` (``savepoint``) are signal receivers'
    writes that must never fail what they travel with: if the statement that carries them
    fails at or after that savepoint, the transaction is rolled back to it, ``recover`` runs
    the receivers again (each isolated, so the failing one is logged and skipped), and what
    followed them is sent again. A failure before the savepoint is the transaction's own and
    is raised. (``approvals.signals.dispatch``.)"""
    queue = _queue()
    queue.guards.append(_Guard(sid, len(queue.statements), recover))


def withdraw_savepoint(sid: str, *, with_what_follows: bool = False) -> bool:
    """Take ``SAVEPOINT sid`` back when no statement has carried it yet; whether it was still
    queued. Only when nothing was queued after it (there is nothing to isolate), or, with
    ``with_what_follows``, together with what was queued after it (which then never happens:
    a rollback to the savepoint that needs no round trip)."""
    queue, sql = _queue(), connection.ops.savepoint_create_sql(sid)
    if (sql, ()) not in queue.statements[queue.sent :]:
        return False
    at = queue.statements.index((sql, ()))
    if at < len(queue.statements) - 1 and not with_what_follows:
        return False
    del queue.statements[at:]
    queue.guards[:] = [guard for guard in queue.guards if guard.end <= at]
    return True
