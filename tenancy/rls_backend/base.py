"""Django's PostgreSQL backend plus ``core.rls.ScopeInjector`` on every connection, with each
transaction's BEGIN travelling in the round trip of its first statement.

The injector needs to know when a transaction ends, because that is when PostgreSQL forgets a
transaction-local setting: after a commit, a rollback, a rollback to a savepoint (which undoes a
``set_config`` made inside it), a switch of autocommit, or a new connection. Those are the private
hooks overridden here; each one only forgets what was sent, and the next statement sends it again.

Each new connection also gets a random nonce in its startup packet (``app.session_nonce``): scopes
are signed for it (``core.rls``), and unlike the text of a statement, no other session can see
it. ``SCOPE_ROLES`` in the database settings names the role each scope runs as.

The connection also keeps the names of the statements it prepared (``core.sql.Prepared``): they
live as long as the session, so a new connection starts with none. Its session plans them once,
generically (``plan_cache_mode``, sent in the startup packet too): left to choose, PostgreSQL plans
the first five runs of each statement anew, and every run of one whose generic plan it prices
above a custom one, such as the stages' ``UPDATE ... FROM unnest(...)``, whose arrays' lengths it
cannot know in advance (its generic plan is the same nested loop over the key's index). The
statements are all reads and writes by key or tenant, planned the same for any value.

Transactions: psycopg with autocommit off sends BEGIN on its own, one round trip before the
transaction's first statement, and COMMIT after its last. Here psycopg stays in autocommit and
the backend sends both itself: when Django opens a transaction (autocommit off), ``BEGIN`` goes
in front of the next statement, in the same query string (``TransactionOpener``); the COMMIT or
ROLLBACK goes through the connection's execute wrappers, so the writes ``core.pipeline`` still
holds travel with the COMMIT and are dropped by a ROLLBACK. A transaction that sent nothing
sends no COMMIT either. A statement string that fails before its BEGIN ran (a syntax error is
found before anything runs) leaves the transaction unopened, and the next statement opens it.

A string of several statements returns the result of each; psycopg makes the first one current,
the connection's cursors (``LastResultCursor``) the last one, the statement the caller sent.
"""

import secrets

from django.db.backends.postgresql import base
from django.db.backends.postgresql.psycopg_any import IsolationLevel
from django.db.backends.utils import CursorWrapper, debug_transaction
from psycopg.pq import TransactionStatus

from core import pipeline
from core.rls import NONCE_SETTING, Scope, ScopeInjector

_BEGIN = {
    IsolationLevel.READ_UNCOMMITTED: "BEGIN ISOLATION LEVEL READ UNCOMMITTED",
    IsolationLevel.READ_COMMITTED: "BEGIN ISOLATION LEVEL READ COMMITTED",
    IsolationLevel.REPEATABLE_READ: "BEGIN ISOLATION LEVEL REPEATABLE READ",
    IsolationLevel.SERIALIZABLE: "BEGIN ISOLATION LEVEL SERIALIZABLE",
}


class TransactionOpener:
    """``BEGIN; `` in front of a transaction's first statement: the backend's last execute
    wrapper, so the BEGIN goes in front of the scope's ``set_config`` too."""

    def __call__(self, execute, sql, params, many, context):
        wrapper = context["connection"]
        if not wrapper.transaction_unopened:
            return execute(sql, params, many, context)
        wrapper.transaction_unopened = False
        try:
            if many:  # executemany would send the BEGIN once per row
                context["cursor"].cursor.execute(wrapper.begin_sql)
                return execute(sql, params, many, context)
            return execute(f"{wrapper.begin_sql}; {sql}", params, many, context)
        except Exception:
            if wrapper.connection.info.transaction_status == TransactionStatus.IDLE:
                wrapper.transaction_unopened = True  # nothing ran, or the COMMIT it carried failed
            raise


class LastResultCursor(base.Cursor):
    """Django's cursor, on the result of the last statement of the string it sent: the one
    the caller wrote, behind the BEGIN, the scope and the queued writes put in front of it."""

    def execute(self, query, params=None, **kwargs):
        super().execute(query, params, **kwargs)
        while self.nextset():
            pass
        return self


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rls_scope_sent = None
        self.rls_nonce = ""
        self.prepared_statements: set[str] = set()
        self.stream_writes = self.settings_dict.get("STREAM_WRITES", True)  # core.pipeline
        # Django opened a transaction that PostgreSQL has not seen yet.
        self.transaction_unopened = False
        self.execute_wrappers.append(ScopeInjector())
        self.execute_wrappers.append(TransactionOpener())

    @property
    def scope_roles(self) -> dict | None:
        return self.settings_dict.get("SCOPE_ROLES")

    @property
    def begin_sql(self) -> str:
        level = self.settings_dict["OPTIONS"].get("isolation_level")
        return "BEGIN" if level is None else _BEGIN[IsolationLevel(level)]

    def scope_sql(self, scope: Scope) -> str:
        """The statement that puts ``scope`` into this connection's current transaction."""
        return scope.sql(roles=self.scope_roles, nonce=self.rls_nonce)

    def _forget_scope(self) -> None:
        self.rls_scope_sent = None

    def get_connection_params(self):
        return {**super().get_connection_params(), "cursor_factory": LastResultCursor}

    def get_new_connection(self, conn_params):
        pipeline.discard(self)  # what a lost connection held is gone with it
        self._forget_scope()
        self.prepared_statements = set()
        self.transaction_unopened = False
        self.rls_nonce = secrets.token_hex(16)
        session = [f"-c {NONCE_SETTING}={self.rls_nonce}", "-c plan_cache_mode=force_generic_plan"]
        options = " ".join(filter(None, [conn_params.get("options"), *session]))
        connection = super().get_new_connection({**conn_params, "options": options})
        connection.autocommit = True  # BEGIN and COMMIT are this backend's (module docstring)
        return connection

    def _set_autocommit(self, autocommit):
        open_on_server = self.connection.info.transaction_status != TransactionStatus.IDLE
        if autocommit and open_on_server:
            # As psycopg refuses it: the open transaction would never be committed.
            with self.wrap_database_errors:
                raise self.Database.ProgrammingError(
                    "autocommit cannot be turned on inside a transaction: commit or roll back"
                )
        self._forget_scope()
        self.transaction_unopened = not autocommit

    def _commit(self):
        self._end_transaction("COMMIT")

    def _rollback(self):
        self._end_transaction("ROLLBACK")

    def _end_transaction(self, command: str) -> None:
        """Send ``command`` through the execute wrappers (the queued writes travel with a
        COMMIT), unless no transaction is open on the server (it never opened, or its failed
        COMMIT ended it) and no write is queued."""
        if self.connection is None:
            return
        idle = self.connection.info.transaction_status == TransactionStatus.IDLE
        try:
            if idle and (command == "ROLLBACK" or not pipeline.queued(self)):
                pipeline.discard(self)
                return
            # A plain cursor: debug_transaction logs the command once, as Django's _commit does.
            with (
                debug_transaction(self, command),
                self.wrap_database_errors,
                CursorWrapper(self.create_cursor(), self) as cursor,
            ):
                cursor.execute(command)
        finally:
            # The writes the COMMIT carries still run in the transaction's scope; the next
            # transaction sends its own. With autocommit still off (a commit() outside atomic),
            # the next statement opens the next transaction.
            self._forget_scope()
            self.transaction_unopened = not self.autocommit

    def _savepoint_rollback(self, sid):
        super()._savepoint_rollback(sid)
        self._forget_scope()
