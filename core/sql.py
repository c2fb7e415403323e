"""The one way to write raw SQL here: names from models, values as parameters.

Raw SQL is kept only where a benchmark shows the ORM costs more than it gives, or where the ORM
cannot express the statement (each such place says which in a ``Raw SQL:`` comment). Whenever it
names a model's table, its text is built by ``sql()``: every table and column name comes from a
model's ``_meta``, quoted, so a renamed field or table breaks loudly instead of silently; every
value goes to the driver as a query parameter (``%s`` / ``%(name)s``), never into the text.

``sql(template, **tables)`` formats ``template`` with one placeholder per SQL alias::

    sql("SELECT {r.user} FROM {r} JOIN {u} ON {u.pk} = {r.user} WHERE {r.role} = ANY(%s)",
        r=UserRole, u=User)
    # SELECT r."user_id" FROM "tenancy_userrole" r JOIN "tenancy_user" u ON u."id" = r."user_id"
    #  WHERE r."role" = ANY(%s)

* ``{r}``: the table with its alias (``"tenancy_userrole" r``), for FROM, JOIN, UPDATE, INSERT;
* ``{r.field}``: the field's column qualified by the alias (``r."user_id"``); ``pk`` is the key;
* ``{r:table}`` and ``{r.field:column}``: the bare quoted names (an INSERT's column list);
* ``{r:columns}``: every concrete column of the model, qualified, in field order: a SELECT list
  that ``model_from_row`` turns back into an instance (several models from one row); with
  ``r=Deferring(Model, "field", ...)`` all but those fields, which the instance loads when read
  (as ``QuerySet.defer`` does);
* literal braces are doubled (``'{{}}'::jsonb``), as in ``str.format``.

The result is plain text: build it once, at import, and pass the parameters to ``execute``.

``Prepared(text)`` wraps such a text for the few statements that run on every decision and whose
planning costs PostgreSQL more than running them: each connection plans it once (``PREPARE``;
the backend's sessions keep one generic plan per statement, ``tenancy.rls_backend``) and then
runs it by name.

For the set-based writers (the SLA check, the notification fan-out): ``Params``, named parameters
added as the text is built, and ``insert_select``, an ``INSERT ... SELECT`` into a model's table
that fills every column the caller leaves out from the model's defaults.
"""

import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from functools import cache, reduce
from typing import ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models import NOT_PROVIDED, Model
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init
from django.utils import timezone


def quote(name: str) -> str:
    """An identifier, quoted for PostgreSQL."""
    return connection.ops.quote_name(name)


class _Column:
    def __init__(self, alias: str, column: str):
        self.alias, self.column = alias, column

    def __format__(self, spec: str) -> str:
        if spec == "column":
            return quote(self.column)
        if spec:
            raise ValueError(f"unknown format {spec!r} for a column (use 'column')")
        return f"{self.alias}.{quote(self.column)}"


class Deferring:
    """A model for ``sql()`` and ``model_from_row`` without some of its fields (large ones)."""

    def __init__(self, model: type[Model], *names: str):
        for name in names:
            model._meta.get_field(name)  # a typo fails at import
        self.model, self.names = model, frozenset(names)

    @property
    def fields(self) -> list:
        return [f for f in self.model._meta.concrete_fields if f.name not in self.names]


def _loaded(model) -> tuple[type[Model], list]:
    if isinstance(model, Deferring):
        return model.model, model.fields
    return model, model._meta.concrete_fields


class _Table:
    def __init__(self, alias: str, model):
        self.alias = alias
        self.model, self.fields = _loaded(model)

    def __getattr__(self, name: str) -> _Column:
        meta = self.model._meta
        field = meta.pk if name == "pk" else meta.get_field(name)
        if not getattr(field, "concrete", False) or field.column is None:
            raise ValueError(f"{meta.label}.{name} has no column")
        return _Column(self.alias, field.column)

    def __format__(self, spec: str) -> str:
        table = quote(self.model._meta.db_table)
        if spec == "table":
            return table
        if spec == "columns":
            return ", ".join(f"{self.alias}.{quote(field.column)}" for field in self.fields)
        if spec:
            raise ValueError(f"unknown format {spec!r} for a table (use 'table' or 'columns')")
        return f"{table} {self.alias}"


def sql(template: str, **tables) -> str:
    """``template`` with each alias's table and columns filled in from its model (see above)."""
    return template.format(**{alias: _Table(alias, model) for alias, model in tables.items()})


def default_connection():
    """The connection itself, not the ``connection`` proxy: code that reads its connection once
    per field or value (a compiler, the model converters) would pay a context-local lookup on
    every read of the proxy."""
    return connections[DEFAULT_DB_ALIAS]


def model_from_row(model, values: Sequence) -> Model:
    """An instance of ``model`` (a model or a ``Deferring``) from the values of its
    ``{r:columns}``, converted as the ORM converts them (a JSON field's text parsed, ...): as if
    a queryset had loaded it."""
    model_class, names, converters = _converters(model)
    wrapper = default_connection()
    converted = [
        reduce(lambda value, convert: convert(value, field, wrapper), field_converters, value)
        if field_converters
        else value
        for (field, field_converters), value in zip(converters, values, strict=True)
    ]
    if pre_init.has_listeners(model_class) or post_init.has_listeners(model_class):
        return model_class.from_db(wrapper.alias, names, converted)
    # What ``from_db`` leaves on an instance, without ``__init__``'s walk over every field: the
    # decision path builds a model per row it reads, and that walk was most of the cost.
    obj = model_class.__new__(model_class)
    state = obj._state = ModelState()
    state.adding, state.db = False, wrapper.alias
    obj.__dict__.update(zip(_attnames(model), converted, strict=True))
    return obj


def models_from_row(values: Sequence, *models) -> list[Model]:
    """One instance per model from a row of their ``{r:columns}`` one after the other
    (``model_from_row`` each)."""
    found, rest = leading_models(values, *models)
    if rest:
        raise ValueError(f"{len(values)} values for {len(values) - len(rest)} columns")
    return found


def leading_models(values: Sequence, *models) -> tuple[list[Model], Sequence]:
    """``models_from_row`` of the row's first columns, and the values after them."""
    found, start = [], 0
    for model in models:
        end = start + len(_loaded(model)[1])
        if end > len(values):
            raise ValueError(f"{len(values)} values for at least {end} columns")
        found.append(model_from_row(model, values[start:end]))
        start = end
    return found, values[start:]


def one_to_many(rows: Sequence, parent, child, *, trailing: int = 0) -> list[tuple]:
    """The rows of ``SELECT {p:columns}, {c:columns}, <trailing values> FROM p LEFT JOIN c``
    grouped: ``(parent, its first row's trailing values, [(child, its row's trailing values),
    ...])`` for each parent once, by its key (the first column), in the rows' order. A parent
    without children comes with one row whose child columns are NULL."""
    width = len(_loaded(parent)[1])
    grouped: dict = {}
    for values in rows:
        end = len(values) - trailing
        group = grouped.get(values[0])
        if group is None:
            group = grouped[values[0]] = (model_from_row(parent, values[:width]), values[end:], [])
        if values[width] is not None:
            group[2].append((model_from_row(child, values[width:end]), values[end:]))
    return list(grouped.values())


def joined(obj: Model, name: str, related: Model) -> None:
    """Leave ``related`` where ``select_related(name)`` leaves it: for a reader that loaded both
    rows itself, whose foreign key already holds ``related``'s key. Unlike assigning it
    (``obj.<name> = related``), this skips the checks and key copy of an assignment, which the
    decision path paid for each of its rows."""
    field = obj._meta.get_field(name)
    if getattr(obj, field.attname) != getattr(related, field.target_field.attname):
        raise ValueError(f"{obj!r}.{name} does not refer to {related!r}")
    field.set_cached_value(obj, related)


def prefetched(obj: Model, related_name: str, rows) -> None:
    """Leave ``rows`` where ``prefetch_related(related_name)`` leaves them, so that
    ``getattr(obj, related_name).all()`` returns them without a query: for a reader that loaded
    the related rows with its own SQL."""
    queryset = getattr(obj, related_name).get_queryset()
    queryset._result_cache, queryset._prefetch_done = list(rows), True
    if not hasattr(obj, "_prefetched_objects_cache"):
        obj._prefetched_objects_cache = {}
    obj._prefetched_objects_cache[related_name] = queryset


@cache
def _converters(model) -> tuple:
    model_class, fields = _loaded(model)
    names = None if fields is model_class._meta.concrete_fields else [f.attname for f in fields]
    return (
        model_class,
        names,
        tuple((field, tuple(field.get_db_converters(connection))) for field in fields),
    )


@cache
def _attnames(model) -> tuple[str, ...]:
    return tuple(field.attname for field in _loaded(model)[1])


class Prepared:
    """A statement PostgreSQL plans once per connection and then runs by name.

    Raw SQL: PREPARE and EXECUTE, which the ORM does not send. A statement sent as text is parsed,
    rewritten (the row-level security policies) and planned every time; for the reads that run
    on every decision or contract, and the notification fan-out, that was more server time than
    running them (the per-statement server profile in docs/benchmarks.md). ``text`` is built
    like any other (``sql()``, named ``%(name)s`` parameters); the first ``execute`` on a
    connection sends ``PREPARE`` on the driver's cursor, as Django sends a new connection's own
    set-up, so no query log or query budget counts it; every call sends ``EXECUTE name(...)``
    with the values as query parameters (``bound``), which PostgreSQL converts to the types it
    inferred for them at ``PREPARE``. They carry no cast of their own: resolving a cast's type
    name for every parameter of every run was a visible share of the server's time.

    A prepared statement outlives the transaction that prepared it, even a rolled-back one, and
    dies with its connection, so the connection keeps the names it prepared
    (``tenancy.rls_backend``) and forgets them when it reconnects. PostgreSQL re-plans it by
    itself when a table it reads changes, and when it runs as another role (the policies).
    Statements prepared by name need a session of their own: a transaction-pooling proxy in front
    of PostgreSQL is not supported (docs/database-roles.md).
    """

    # Every statement by name: for a tool that replays recorded ``EXECUTE``s on connections of
    # its own, which must prepare them first (bench/bench_load.py).
    by_name: ClassVar[dict[str, "Prepared"]] = {}

    def __init__(self, text: str):
        self.name = f"clm_{hashlib.sha256(text.encode()).hexdigest()[:20]}"
        self.keys: list[str] = []
        Prepared.by_name[self.name] = self

        def number(match) -> str:
            if match.group(1) is None:
                return "%"
            if match.group(1) not in self.keys:
                self.keys.append(match.group(1))
            return f"${self.keys.index(match.group(1)) + 1}"

        if re.search(r"%s", text.replace("%%", "")):
            raise ValueError("a prepared statement takes named parameters only (%(name)s)")
        if _SELECT.match(text):
            # Each EXECUTE copies the statement's select list to describe its rows to the
            # client: a list holding subqueries (the decision's read) is a large tree to copy
            # on every run, column references are not. A subquery with ORDER BY or FOR SHARE is
            # planned on its own and its rows come out as it returns them; the outer scan, which
            # does nothing, is dropped from the plan.
            text = f"SELECT * FROM ({text}) AS prepared_rows"  # noqa: S608 (SQL text only)
        # Sent without parameters, so a literal % is written once.
        self.prepare = f"PREPARE {self.name} AS {_NAMED.sub(number, text)}"
        self._execute = f"EXECUTE {self.name}({', '.join(f'%({key})s' for key in self.keys)})"

    def execute(self, cursor, params: Mapping) -> None:
        """Run the statement on ``cursor`` (a Django cursor) with ``params``."""
        cursor.execute(self.statement(cursor.db), self.bound(params))

    @staticmethod
    def bound(params: Mapping) -> dict:
        """``params`` as ``EXECUTE`` takes them best: each list of plain values as one array
        literal (``'{"a","b"}'``), each UUID as its text.

        psycopg adapts a list element by element, in Python, and sends it with a cast to the
        array type it guessed from the values (``'{...}'::uuid[]``, ``'{1,2}'::int2[]``), which
        PostgreSQL resolves by name on every ``EXECUTE`` (see the class docstring). For the
        statements that take their rows as arrays (the audit rows, the notification fan-out)
        this literal costs the client less, and the statement's parameter type gives
        it its element type. A list holding anything else (floats, nested lists) is left to
        psycopg, whose typed array PostgreSQL must be able to assign to that type (``numeric[]``
        to ``float8[]`` can be, ``text[]`` to ``uuid[]`` cannot).
        """
        bound = dict(params)
        for key, value in params.items():
            kind = type(value)
            if kind is list:
                bound[key] = _array_literal(value)
            elif kind is uuid.UUID:
                bound[key] = str(value)
        return bound

    def statement(self, wrapper) -> str:
        """The ``EXECUTE`` (named ``%(name)s`` parameters) on ``wrapper``, a connection, where it
        is prepared first if it is not yet: for a caller that sends it with other statements
        (``core.pipeline``)."""
        if self.name not in wrapper.prepared_statements:
            wrapper.ensure_connection()
            with wrapper.connection.cursor() as driver_cursor:
                self._prepare(wrapper, driver_cursor)
        return self._execute

    def run(self, params: Mapping) -> None:
        """Run it on a cursor of the default connection, for a statement that returns no rows."""
        with connection.cursor() as cursor:
            self.execute(cursor, params)

    def fetchall(self, params: Mapping) -> list[tuple]:
        """Run it on a cursor of the default connection: its rows."""
        with connection.cursor() as cursor:
            self.execute(cursor, params)
            return cursor.fetchall()

    def fetchone(self, params: Mapping) -> tuple | None:
        """Run it on a cursor of the default connection: its first row, or None."""
        with connection.cursor() as cursor:
            self.execute(cursor, params)
            return cursor.fetchone()

    def _prepare(self, wrapper, driver_cursor) -> None:
        """PREPARE on the driver's cursor, as Django sends its own set-up of a new connection:
        it is part of the connection's life, not of the request that happens to be first, so
        no query log or query budget counts it. It reads no rows, so it needs neither the
        tenant's scope nor the writes queued before it."""
        with wrapper.wrap_database_errors:
            driver_cursor.execute(self.prepare)
        wrapper.prepared_statements.add(self.name)


_SELECT = re.compile(r"\s*SELECT\b", re.IGNORECASE)


def _array_literal(values: list) -> str | list:
    """``values`` as an array literal, or the list itself when an element is not a plain value.

    Texts are double-quoted with backslash and double quote escaped, so that no character in
    them is read as syntax; dates and datetimes are quoted (their ISO form, with the offset,
    holds spaces); numbers and UUIDs need no quotes."""
    elements = []
    for value in values:
        if value is None:
            elements.append("NULL")
        elif isinstance(value, str):
            elements.append('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
        elif isinstance(value, int | uuid.UUID):
            elements.append(str(value))
        elif isinstance(value, date):
            elements.append(f'"{value}"')
        else:
            return values
    return "{" + ",".join(elements) + "}"


_NAMED = re.compile(r"%%|%\((\w+)\)s")


class Params(dict):
    """Named query parameters; ``add`` stores a value and returns its placeholder, with a cast."""

    def add(self, value, cast: str) -> str:
        name = f"p{len(self)}"
        self[name] = value
        return f"%({name})s::{cast}"


def insert_select(
    model: type[Model],
    values: dict[str, str],
    source: str,
    params: Params,
    *,
    now: str | None = None,
    key_order: bool = False,
    order_by: str = "",
) -> str:
    """``INSERT INTO <model's table> (...) SELECT ... FROM <source>``, for set-based writers.

    ``values`` maps column names to SQL expressions over ``source``; every other concrete column
    gets the model's default, so a column added with a default needs no change in the callers
    (one without a default fails loudly): omitted when the database has one, ``gen_random_uuid()``
    for a uuid4 default, ``now`` (SQL; by default the time of this call) for ``timezone.now``
    and ``auto_now``, the default's value otherwise (evaluated once), NULL when nullable.

    ``key_order``: rows go in in primary-key order (a sort of the run's rows in memory). Random
    keys inserted in random order land all over the key's index, and, for the indexes that end
    with the key after columns every row of a run shares (a listing's ``created_at, id``),
    all over that run's part of them: page splits in the middle and a descent from the root for
    each row. In key order each insert continues where the previous one stopped.

    ``order_by``: rows go in in this order instead (SQL over ``source``), for a table whose
    database default numbers rows as they are inserted (the audit log's ``seq``).
    """
    if key_order and order_by:
        raise ValueError("key_order and order_by are exclusive")
    meta = model._meta
    unknown = set(values) - {f.column for f in meta.concrete_fields}
    if unknown:
        raise ImproperlyConfigured(f"{meta.label} has no column(s) {sorted(unknown)}")
    columns, expressions = [], []
    for field in meta.concrete_fields:
        if field.column in values:
            expression = values[field.column]
        elif field.db_default is not NOT_PROVIDED:
            continue
        elif isinstance(field, models.UUIDField) and field.default is uuid.uuid4:
            expression = "gen_random_uuid()"
        elif field.default is _NOW or _stamped(field):
            expression = now or params.add(timezone.now(), field.db_type(connection))
        elif field.has_default():
            value = field.get_db_prep_save(field.get_default(), connection)
            expression = params.add(value, field.db_type(connection))
        elif field.null:
            expression = f"NULL::{field.db_type(connection)}"
        else:
            raise ImproperlyConfigured(f"{meta.label}.{field.name} has no default: set it")
        columns.append(quote(field.column))
        expressions.append(expression)
    order = f" ORDER BY {order_by}" if order_by else ""
    if key_order:
        key = quote(meta.pk.column)
        if key not in columns:
            raise ImproperlyConfigured(f"{meta.label}: the database sets the key")
        order = f" ORDER BY {columns.index(key) + 1}"
    target = f"{quote(meta.db_table)} ({', '.join(columns)})"
    return f"INSERT INTO {target} SELECT {', '.join(expressions)} FROM {source}{order}"  # noqa: S608


# ``timezone.now`` as the models name it in ``default=``: a test that patches the module's
# attribute must not turn the default into a value evaluated once, which a cached statement
# would then write forever.
_NOW = timezone.now


def _stamped(field) -> bool:
    return getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
