"""The one way to write raw SQL here: names from models, values as parameters.

Raw SQL is kept only where a benchmark shows the ORM costs more than it gives (each such place
names the benchmark). Its text is built by ``sql()``: every table and column name comes from a
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
* literal braces are doubled (``'{{}}'::jsonb``), as in ``str.format``.

The result is plain text: build it once, at import, and pass the parameters to ``execute``.
"""

from django.db import connection
from django.db.models import Model


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
        if spec:
            raise ValueError(f"unknown format {spec!r} for a table (use 'table')")
        return f"{table} {self.alias}"


def sql(template: str, **tables: type[Model]) -> str:
    """``template`` with each alias's table and columns filled in from its model (see above)."""
    return template.format(**{alias: _Table(alias, model) for alias, model in tables.items()})
