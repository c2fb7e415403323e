"""Django's PostgreSQL backend plus ``tenancy.rls.ScopeInjector`` on every connection.

The injector needs to know when a transaction ends, because that is when PostgreSQL forgets a
transaction-local setting: after a commit, a rollback, a rollback to a savepoint (which undoes a
``set_config`` made inside it), a switch of autocommit, or a new connection. Those are the private
hooks overridden here; each one only forgets what was sent, and the next statement sends it again.
"""

from django.db.backends.postgresql import base

from tenancy.rls import ScopeInjector


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rls_scope_sent = None
        self.execute_wrappers.append(ScopeInjector())

    def _forget_scope(self) -> None:
        self.rls_scope_sent = None

    def get_new_connection(self, conn_params):
        self._forget_scope()
        return super().get_new_connection(conn_params)

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
