"""PostgreSQL row-level security: the database as a second wall around each tenant's rows.

The application scopes every query by tenant (``tenancy.scoping``); RLS makes a forgotten filter
harmless. Every tenant table has ``ENABLE`` and ``FORCE ROW LEVEL SECURITY`` and one policy
(migration ``tenancy.0004``): a row is visible and writable only when its ``tenant_id`` equals the
transaction's ``app.tenant_id`` setting, or when the transaction says ``app.rls_bypass = on``.
The app connects as a role that cannot skip policies (``config/database.py``).

Who sets what, in this process, is a ``ContextVar`` scope:

* a web request starts with no scope (``request_scope``: nothing visible), and authentication
  narrows it to the caller's tenant (``activate_tenant``);
* ``tenant_scope(tenant)`` for work on behalf of one tenant outside a request;
* ``bypass(reason)`` for the few cross-tenant jobs (the delivery worker, the all-tenant SLA
  check, platform administrators in the Django admin). Each entry is logged to ``clm.security``
  with its reason; production code enters it through ``audit.services.audited_rls_bypass``,
  which also writes a platform audit row.

The database backend (``tenancy.rls_backend``) puts the scope into the transaction: before the
first statement of every transaction (and again whenever the scope changes within one) it sends
``set_config(..., true)`` in the same round trip. The setting is transaction-local, so a pooled
connection never carries one tenant's scope into another's request.
"""

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

TENANT_SETTING = "app.tenant_id"
BYPASS_SETTING = "app.rls_bypass"

security_log = logging.getLogger("clm.security")


@dataclass(frozen=True)
class Scope:
    tenant_id: str = ""
    bypass: bool = False

    def sql(self) -> str:
        """The statement that puts this scope into the current transaction.

        Values are inlined, not bound: a tenant id is a UUID (``str(uuid.UUID(...))`` below), and
        a statement with no ``%`` stays valid whether or not the query it precedes has parameters.
        """
        return (
            f"SELECT set_config('{TENANT_SETTING}', '{self.tenant_id}', true), "
            f"set_config('{BYPASS_SETTING}', '{'on' if self.bypass else ''}', true)"
        )


NO_SCOPE = Scope()
_scope: ContextVar[Scope] = ContextVar("clm_rls_scope", default=NO_SCOPE)


def current_scope() -> Scope:
    return _scope.get()


def _tenant_scope(tenant) -> Scope:
    tenant_id = getattr(tenant, "pk", tenant)
    if tenant_id is None:
        return NO_SCOPE
    return Scope(tenant_id=str(uuid.UUID(str(tenant_id))))


@contextmanager
def _entered(scope: Scope) -> Iterator[Scope]:
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


def tenant_scope(tenant):
    """Within the block, queries see and write ``tenant``'s rows only (a Tenant or its id)."""
    return _entered(_tenant_scope(tenant))


def request_scope():
    """A web request starts strict, whatever its caller's scope: nothing until authenticated."""
    return _entered(NO_SCOPE)


def activate_tenant(tenant) -> None:
    """Narrow the current request's scope to ``tenant`` (authentication calls this).

    ``request_scope`` restores the previous scope when the request ends.
    """
    _scope.set(_tenant_scope(tenant))


def _bypass_scope(reason: str) -> Scope:
    if not reason:
        raise ValueError("an RLS bypass needs a reason")
    security_log.info("rls bypass", extra={"event": "rls_bypass", "reason": reason})
    return Scope(bypass=True)


def bypass(reason: str):
    """Within the block, policies let every tenant's rows through. Logged, with ``reason``."""
    return _entered(_bypass_scope(reason))


def activate_bypass(reason: str) -> None:
    """Like ``bypass``, for the rest of the current context (a request of a platform admin)."""
    _scope.set(_bypass_scope(reason))


_TRANSACTION_CONTROL = ("SAVEPOINT ", "RELEASE SAVEPOINT ", "ROLLBACK TO SAVEPOINT ")


class ScopeInjector:
    """A connection ``execute_wrapper`` that keeps each transaction's settings equal to the scope.

    In autocommit every statement is its own transaction, so a scoped statement is sent as
    ``<set_config>; <statement>``: PostgreSQL runs a multi-statement query string as one implicit
    transaction, and returns the last statement's result. Inside a transaction the settings are
    sent once, with the first statement, and again only when the scope changes; the backend forgets
    what it sent when the transaction (or a savepoint, which would undo it) ends.
    """

    def __call__(self, execute, sql, params, many, context):
        wrapper = context["connection"]
        scope = _scope.get()
        if not isinstance(sql, str):  # a psycopg2.sql.Composed: render it to prefix it
            sql = sql.as_string(context["cursor"].cursor)
        if sql.startswith(_TRANSACTION_CONTROL):
            # Django's savepoint statements; ROLLBACK TO must run even in an aborted transaction.
            pass
        elif wrapper.get_autocommit():
            if scope != NO_SCOPE:
                sql = f"{scope.sql()}; {sql}"
        elif wrapper.rls_scope_sent != scope:
            sql = f"{scope.sql()}; {sql}"
            wrapper.rls_scope_sent = scope
        return execute(sql, params, many, context)
