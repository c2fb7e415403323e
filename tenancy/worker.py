"""The worker role, for the few management commands that work across tenants.

The web connects as the app role, which row-level security binds and which can become no other
role, so ``core.rls.bypass`` fails there. A command built on ``WorkerCommand`` connects as the
worker role instead (BYPASSRLS; ``DATABASE_WORKER_URL``, or the role ``provision`` derives),
before its first query. Exactly these do, and nothing else may (``tests/tenancy/test_rls.py``):
``deliver_notifications``, ``generate_documents``, ``check_sla_breaches``,
``check_consistency`` and ``purge_idempotency_keys``. Within them, everything but an explicit
bypass still runs as the app role (``SCOPE_ROLES``), so ``check_sla_breaches --tenant`` is bound
like a request.
"""

import dj_database_url
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS, connections

from config.database import role_url

# Which parts of a URL make the login: the worker's may be another host or database entirely.
_LOGIN_KEYS = ("NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")


def connect_as_worker(alias: str = DEFAULT_DB_ALIAS) -> None:
    """From now on, this process's connections of ``alias`` log in as the worker role.

    It changes the settings every thread's connection is made from, so do it before the first
    query. A process logged in as anything but the app role (the owner; the tests' role, which
    may already become the worker) is left as it is.
    """
    shared = connections.settings[alias]
    if shared["USER"] != settings.DATABASE_APP_ROLE:
        return
    worker = dj_database_url.parse(role_url("worker"))
    connections[alias].close()
    shared.update({key: worker.get(key, shared.get(key)) for key in _LOGIN_KEYS})


class WorkerCommand(BaseCommand):
    """A management command that runs as the worker role (see the module docstring)."""

    def execute(self, *args, **options):
        connect_as_worker()
        return super().execute(*args, **options)
