"""PostgreSQL row-level security: the database as a second wall around each tenant's rows.

The application scopes every query by tenant (``tenancy.scoping``); RLS makes a forgotten filter
harmless, and an SQL injection too. Every tenant table, ``tenancy_user`` and the JWT blacklist
tables have ``ENABLE`` and ``FORCE ROW LEVEL SECURITY`` and a policy (migration ``tenancy.0008``):
a row is visible and writable only when its ``tenant_id`` equals ``app_current_tenant()``. There is
no bypass clause: no setting a session can make lets a policy through.

``app_current_tenant()`` believes a scope only when it is signed. The backend puts
``app.tenant_id = <tenant id>.<signature>`` into the transaction, the signature being
HMAC-SHA256 over ``<tenant id>:<connection nonce>`` with a key only this application and the
owner role know (``core.rls_key``; the database copy lives in a table the app role cannot
read). The function, SECURITY DEFINER and owned by the owner, recomputes it with PostgreSQL's
``sha256()`` and returns the tenant, or NULL. So SQL running as the web's role, an injection
included, may set ``app.tenant_id`` (or any setting) to anything, but cannot name another tenant:

* it cannot compute a signature without the key;
* it cannot replay one either: every connection gets a random nonce in its startup packet
  (``app.session_nonce``), which no other session can read, while the text of the statements
  that carry signatures is visible to every session of the same role (``pg_stat_activity``). A
  signature lifted from another session is for that session's nonce; setting this session's
  nonce to a guess only invalidates its own scopes.

Platform rows (platform operators' own user rows and audit rows without a tenant) belong to no
tenant. They are visible in the signed *platform scope* only (``PLATFORM``, the nil UUID, which is
no tenant's id), never in a tenant's.

Who sets what, in this process, is a ``ContextVar`` scope, and each scope runs as a database role
(``SCOPE_ROLES`` of the connection's settings, sent as ``set_config('role', ...)`` in the same
statement):

* a web request starts with no scope (``request_scope``: nothing visible); authentication narrows
  it to the caller's tenant (``activate_tenant``); ``tenant_scope(tenant)`` for work on behalf of
  one tenant outside a request; ``platform_scope()`` for platform rows. All of them run as the
  app role.
* ``bypass(reason)`` for the few cross-tenant jobs (the delivery worker, the all-tenant SLA check,
  ...): it runs as the worker role, which has BYPASSRLS. The web connects as the app role, which
  is no member of the worker role, so a bypass there fails (permission denied): only processes
  that connect as the worker (``tenancy.worker``) can bypass. Each entry is logged to
  ``clm.security`` with its reason; production code enters it through
  ``audit.services.audited_rls_bypass``, which also writes a platform audit row.

The database backend (``tenancy.rls_backend``) puts the scope into the transaction: before the
first statement of every transaction (and again whenever the scope changes within one) it sends
``set_config(..., true)`` in the same round trip. The settings are transaction-local, so a pooled
connection never carries one tenant's scope into another's request. The migrating owner
connection has no ``SCOPE_ROLES``: it stays itself.
"""

import logging
import uuid
from contextvars import ContextVar
from dataclasses import dataclass

from core import rls_key
from core.context import set_within

TENANT_SETTING = "app.tenant_id"
# The connection's secret nonce, set in its startup packet (``tenancy.rls_backend``).
NONCE_SETTING = "app.session_nonce"
# The scope of platform rows: the nil UUID, which no tenant may have (``Tenant`` constraint).
PLATFORM = str(uuid.UUID(int=0))

security_log = logging.getLogger("clm.security")


@dataclass(frozen=True)
class Scope:
    tenant_id: str = ""  # a tenant's id, PLATFORM, or "" for nothing
    bypass: bool = False

    def sql(self, *, roles: dict | None, nonce: str) -> str:
        """The statement that puts this scope into the current transaction of a connection.

        ``roles`` maps ``tenant`` and ``bypass`` to the role each runs as (None: stay the login
        role). Values are inlined, not bound: a statement with no ``%`` stays valid whether or
        not the query it precedes has parameters; the tenant id is a UUID (``str(uuid.UUID())``
        below), the signature hex and role names come from settings.
        """
        # Raw SQL: transaction-local settings (set_config), which the ORM cannot send.
        value = ""
        if self.tenant_id:
            value = f"{self.tenant_id}.{rls_key.signature(self.tenant_id, nonce)}"
        settings = [f"set_config('{TENANT_SETTING}', '{value}', true)"]
        if roles is not None:
            role = roles["bypass" if self.bypass else "tenant"].replace("'", "''")
            settings.insert(0, f"set_config('role', '{role}', true)")
        return f"SELECT {', '.join(settings)}"


NO_SCOPE = Scope()
_scope: ContextVar[Scope] = ContextVar("clm_rls_scope", default=NO_SCOPE)


def current_scope() -> Scope:
    return _scope.get()


def _tenant_scope(tenant) -> Scope:
    tenant_id = getattr(tenant, "pk", tenant)
    if tenant_id is None:
        return NO_SCOPE
    return Scope(tenant_id=str(uuid.UUID(str(tenant_id))))


def _account_scope(tenant_id) -> Scope:
    return Scope(tenant_id=PLATFORM) if tenant_id is None else _tenant_scope(tenant_id)


def tenant_scope(tenant):
    """Within the block, queries see and write ``tenant``'s rows only (a Tenant or its id)."""
    return set_within(_scope, _tenant_scope(tenant))


def platform_scope():
    """Within the block, queries see and write platform rows only (no tenant's)."""
    return set_within(_scope, _account_scope(None))


def account_scope(tenant_id):
    """The scope of a user's row: its tenant's, or the platform's (``tenant_id`` None)."""
    return set_within(_scope, _account_scope(tenant_id))


def request_scope():
    """A web request starts strict, whatever its caller's scope: nothing until authenticated."""
    return set_within(_scope, NO_SCOPE)


def activate_tenant(tenant) -> None:
    """Narrow the current request's scope to ``tenant`` (authentication calls this).

    ``request_scope`` restores the previous scope when the request ends.
    """
    _scope.set(_tenant_scope(tenant))


def activate_account(tenant_id) -> None:
    """Like ``activate_tenant`` with ``account_scope``'s choice (login of any user)."""
    _scope.set(_account_scope(tenant_id))


def _bypass_scope(reason: str) -> Scope:
    if not reason:
        raise ValueError("an RLS bypass needs a reason")
    security_log.info("rls bypass", extra={"event": "rls_bypass", "reason": reason})
    return Scope(bypass=True)


def bypass(reason: str):
    """Within the block, queries run as the worker role, past every policy. Logged.

    Only a process connected as the worker role (or as a member of it) can do this: anywhere
    else the database refuses the role switch.
    """
    return set_within(_scope, _bypass_scope(reason))


def activate_bypass(reason: str) -> None:
    """Like ``bypass``, for the rest of the current context (a benchmark's fixture code)."""
    _scope.set(_bypass_scope(reason))


_TRANSACTION_CONTROL = ("SAVEPOINT ", "RELEASE SAVEPOINT ", "ROLLBACK TO SAVEPOINT ")
_TRANSACTION_END = ("COMMIT", "ROLLBACK")


class ScopeInjector:
    """A connection ``execute_wrapper`` that keeps each transaction's settings equal to the scope.

    In autocommit every statement is its own transaction, so it is sent as
    ``<set_config>; <statement>``: PostgreSQL runs a multi-statement query string as one implicit
    transaction, and returns the last statement's result. Inside a transaction the settings are
    sent once, with the first statement, and again only when the scope changes; the backend forgets
    what it sent when the transaction (or a savepoint, which would undo it) ends.
    """

    def __call__(self, execute, sql, params, many, context):
        wrapper = context["connection"]
        scope = _scope.get()
        if not isinstance(sql, str):  # a psycopg.sql.Composed: render it to prefix it
            sql = sql.as_string(context["cursor"].cursor)
        if (sql.startswith(_TRANSACTION_CONTROL) and ";" not in sql) or sql in _TRANSACTION_END:
            # Django's savepoint statements and the backend's COMMIT and ROLLBACK, alone;
            # ROLLBACK (TO) must run even in an aborted transaction. A string that carries
            # queued writes behind a SAVEPOINT (core.pipeline) needs the scope.
            pass
        elif wrapper.get_autocommit():
            if scope != NO_SCOPE or wrapper.scope_roles is not None:
                sql = f"{wrapper.scope_sql(scope)}; {sql}"
        elif wrapper.rls_scope_sent != scope:
            sql = f"{wrapper.scope_sql(scope)}; {sql}"
            wrapper.rls_scope_sent = scope
        return execute(sql, params, many, context)


def tenant_table_rls_sql(table: str) -> tuple[str, str]:
    """A migration's forward and backward SQL putting a new tenant table under row-level
    security, with the same policy as every other tenant table (migration ``tenancy.0008``)."""
    # Raw SQL: DDL, which the ORM cannot express; ``table`` is a migration's model's table.
    condition = "tenant_id = (SELECT app_current_tenant())"
    forward = (
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY; "
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY; "
        f"CREATE POLICY tenant_isolation ON {table} USING ({condition}) WITH CHECK ({condition});"
    )
    backward = (
        f"DROP POLICY IF EXISTS tenant_isolation ON {table}; "
        f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY; "
        f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;"
    )
    return forward, backward
