"""Django's PostgreSQL backend plus ``core.rls.ScopeInjector`` on every connection.

The injector needs to know when a transaction ends, because that is when PostgreSQL forgets a
transaction-local setting: after a commit, a rollback, a rollback to a savepoint (which undoes a
``set_config`` made inside it), a switch of autocommit, or a new connection. Those are the private
hooks overridden here; each one only forgets what was sent, and the next statement sends it again.

Each new connection also gets a random nonce in its startup packet (``app.session_nonce``): scopes
are signed for it (``core.rls``), and unlike the text of a statement, no other session can see
it. ``SCOPE_ROLES`` in the database settings names the role each scope runs as.

The connection also keeps the names of the statements it prepared (``core.sql.Prepared``): they
live as long as the session, so a new connection starts with none.
"""

import secrets

from django.db.backends.postgresql import base

from core.rls import NONCE_SETTING, Scope, ScopeInjector


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rls_scope_sent = None
        self.rls_nonce = ""
        self.prepared_statements: set[str] = set()
        self.execute_wrappers.append(ScopeInjector())

    @property
    def scope_roles(self) -> dict | None:
        return self.settings_dict.get("SCOPE_ROLES")

    def scope_sql(self, scope: Scope) -> str:
        """The statement that puts ``scope`` into this connection's current transaction."""
        return scope.sql(roles=self.scope_roles, nonce=self.rls_nonce)

    def _forget_scope(self) -> None:
        self.rls_scope_sent = None

    def get_new_connection(self, conn_params):
        self._forget_scope()
        self.prepared_statements = set()
        self.rls_nonce = secrets.token_hex(16)
        options = " ".join(
            filter(None, [conn_params.get("options"), f"-c {NONCE_SETTING}={self.rls_nonce}"])
        )
        return super().get_new_connection({**conn_params, "options": options})

    def _commit(self):
        self._forget_scope()
        return super()._commit()

    def _rollback(self):
        self._forget_scope()
        return super()._rollback()

    def _savepoint_rollback(self, sid):
        super()._savepoint_rollback(sid)
        self._forget_scope()

    def _set_autocommit(self, autocommit):
        self._forget_scope()
        return super()._set_autocommit(autocommit)
