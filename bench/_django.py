"""Django set-up shared by the benchmarks that need the database.

``setup()`` points Django at a benchmark database of its own (``clm_bench``, or
``$BENCH_DATABASE_NAME``) on the same server as the project's database: ``$DATABASE_URL`` when set,
else the embedded server of ``config/database.py``, with the same app and owner roles. The
database is dropped, re-created and migrated at start, so a benchmark never reads or writes
development data and always starts from the same empty state. ``setup(fresh=False)`` only
connects (for worker processes of a run that already created it: they inherit ``DATABASE_URL``
from the parent).

A benchmark process builds fixtures across tenants, so it connects as the worker role and
bypasses row-level security (``tenancy.worker``, ``core.rls``); what it measures as the app
does runs in its tenant's scope, as the app role. A server it starts (``bench/_server.py``) is a
separate process that connects as the app role, as production's does.
"""

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BENCH_DATABASE_NAME = os.environ.get("BENCH_DATABASE_NAME", "clm_bench")
_BENCH_URL_MARKER = "CLM_BENCH_DATABASE_URL"


def _with_database(url: str, name: str) -> str:
    """The same server and credentials as ``url``, but database ``name``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def recreate_database(server_url: str, name: str) -> None:
    """DROP and CREATE ``name``, connected to the project's own database on that server."""
    from psycopg import sql

    from config.database import connect

    connection = connect(server_url)
    try:
        with connection.cursor() as cursor:
            # WITH (FORCE) ends connections a crashed earlier run may have left (PostgreSQL 13+).
            cursor.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        connection.close()


def setup(*, fresh: bool = True) -> None:
    """``django.setup()`` on the benchmark database; ``fresh`` re-creates and migrates it.

    The owner role migrates; the process connects as the worker role, and builds and reads rows
    of any tenant under one logged bypass (``core.rls``); requests to a server it starts get
    their own tenant scope, as the app role.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-any-deployment-0123456789")
    os.environ.setdefault("JWT_SIGNING_KEY", "bench-only-jwt-signing-key-not-for-any-deployment-0")
    bench_url = os.environ.get(_BENCH_URL_MARKER)
    if bench_url is None:
        from config.database import admin_url, provision

        server_url = admin_url()  # starts the embedded server when DATABASE_URL is unset
        if urlsplit(server_url).path.lstrip("/") == BENCH_DATABASE_NAME:
            raise SystemExit(f"refusing to benchmark on the project database {BENCH_DATABASE_NAME}")
        bench_url = _with_database(server_url, BENCH_DATABASE_NAME)
        if fresh:
            recreate_database(server_url, BENCH_DATABASE_NAME)
            provision(bench_url)
        # Settings read DATABASE_URL; worker processes inherit both variables.
        os.environ[_BENCH_URL_MARKER] = bench_url
        os.environ["DATABASE_URL"] = bench_url
        os.environ.pop("DATABASE_OWNER_URL", None)
        if fresh:
            _migrate_as_owner()
    elif fresh:
        raise RuntimeError("setup(fresh=True) runs once per benchmark, in its main process")

    import django

    django.setup()
    from core import rls
    from tenancy.worker import connect_as_worker

    connect_as_worker()
    rls.activate_bypass("benchmark fixtures and checks")


def _migrate_as_owner() -> None:
    import subprocess

    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_ROLE": "owner"},
        check=True,
    )


def database_description() -> str:
    from django.db import connection

    settings = connection.settings_dict
    where = settings.get("HOST") or settings.get("OPTIONS", {}).get("host") or "local socket"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (version,) = cursor.fetchone()
    return f"PostgreSQL {version}, database {settings['NAME']} at {where}"


def scoped_connection(scope):
    """A psycopg connection outside Django, on the same login as Django's, and the statement
    that puts ``scope`` into one of its transactions (signed for its own nonce: ``core.rls``).
    """
    import secrets

    import psycopg
    from django.db import connection

    from core.rls import NONCE_SETTING

    nonce = secrets.token_hex(16)
    params = connection.get_connection_params()
    options = " ".join(filter(None, [params.get("options"), f"-c {NONCE_SETTING}={nonce}"]))
    raw = psycopg.connect(**{**params, "options": options})
    return raw, scope.sql(roles=connection.scope_roles, nonce=nonce)


def maintenance_connection(role: str = "owner"):
    """An autocommit psycopg connection outside Django, for what the app role may not do: DDL,
    VACUUM and ANALYZE (the tables' ``owner``), CHECKPOINT (``admin``: the server's superuser)."""
    from config.database import admin_url, connect, role_url

    return connect(admin_url() if role == "admin" else role_url(role))


@contextmanager
def maintenance_cursor(role: str = "owner"):
    """A cursor of a ``maintenance_connection``, closed afterwards."""
    connection = maintenance_connection(role)
    try:
        with connection.cursor() as cursor:
            yield cursor
    finally:
        connection.close()


def analyze() -> None:
    """ANALYZE every table of the benchmark database, as their owner (the app role may not).

    Production's autovacuum keeps the planner's statistics; a benchmark fills its new database
    faster than autovacuum analyzes it (if the server runs it at all), and a table that was never
    analyzed has no statistics. The plans made without them are the wrong ones: for a tenant's
    tables, the planner takes the row-level security policy's ``tenant_id`` index over the key
    the query names, reading every row of the tenant, so each statement costs more as the run
    adds rows. A benchmark analyzes after its warm-up, as autovacuum would have by then.
    """
    with maintenance_cursor() as cursor:
        cursor.execute("ANALYZE")
