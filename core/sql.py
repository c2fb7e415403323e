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
  that ``model_from_row`` turns back into an instance (several models from one row);
* literal braces are doubled (``'{{}}'::jsonb``), as in ``str.format``.

The result is plain text: build it once, at import, and pass the parameters to ``execute``.

For the set-based writers (the SLA check, the notification fan-out): ``Params``, named parameters
added as the text is built, and ``insert_select``, an ``INSERT ... SELECT`` into a model's table
that fills every column the caller leaves out from the model's defaults.
"""

import uuid
from collections.abc import Sequence
from functools import cache, reduce

from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models
from django.db.models import NOT_PROVIDED, Model
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


class _Table:
    def __init__(self, alias: str, model: type[Model]):
        self.alias, self.model = alias, model

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
            fields = self.model._meta.concrete_fields
            return ", ".join(f"{self.alias}.{quote(field.column)}" for field in fields)
        if spec:
            raise ValueError(f"unknown format {spec!r} for a table (use 'table' or 'columns')")
        return f"{table} {self.alias}"


def sql(template: str, **tables: type[Model]) -> str:
    """``template`` with each alias's table and columns filled in from its model (see above)."""
    return template.format(**{alias: _Table(alias, model) for alias, model in tables.items()})


def model_from_row(model: type[Model], values: Sequence) -> Model:
    """An instance of ``model`` from the values of its ``{r:columns}``, converted as the ORM
    converts them (a JSON field's text parsed, ...): as if a queryset had loaded it."""
    converted = [
        reduce(lambda value, convert: convert(value, field, connection), converters, value)
        for (field, converters), value in zip(_converters(model), values, strict=True)
    ]
    return model.from_db(connection.alias, None, converted)


@cache
def _converters(model: type[Model]) -> tuple:
    return tuple(
        (field, tuple(field.get_db_converters(connection))) for field in model._meta.concrete_fields
    )


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
        elif field.default is timezone.now or _stamped(field):
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


def _stamped(field) -> bool:
    return getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
