"""The three database roles (config/database.py, docs/database-roles.md): where each one's URL
comes from in each mode, and what ``provision`` makes of them."""

from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from config import database
from config.database import admin_url, connect, provision, role_name, role_url, with_user

APP = "postgres://clm_app:a@db.example:5432/clm"
WORKER = "postgres://clm_worker:w@db.example:5432/clm"
OWNER = "postgres://clm_owner:o@db.example:5432/clm"


@pytest.fixture
def explicit_env(monkeypatch):
    for name in ("DATABASE_WORKER_URL", "DATABASE_OWNER_URL", "DATABASE_ROLES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", APP)
    return monkeypatch


def test_explicit_roles_each_url_from_its_own_variable(explicit_env):
    explicit_env.setenv("DATABASE_WORKER_URL", WORKER)
    explicit_env.setenv("DATABASE_OWNER_URL", OWNER)
    assert [role_url(role) for role in ("app", "worker", "owner")] == [APP, WORKER, OWNER]
    assert role_name("worker") == "clm_worker"


def test_the_web_given_only_its_own_url_knows_no_other(explicit_env):
    explicit_env.setenv("DATABASE_ROLES", "explicit")
    assert role_url("app") == APP
    assert role_name("worker") == database.WORKER_ROLE  # a name, for the refused role switch
    with pytest.raises(ValueError, match="DATABASE_WORKER_URL must be set"):
        role_url("worker")
    with pytest.raises(ValueError, match="DATABASE_OWNER_URL must be set"):
        role_url("owner")


def test_derived_roles_share_the_admins_server_and_database(explicit_env):
    admin = "postgres://postgres@db.example:5432/clm"
    explicit_env.setenv("DATABASE_URL", admin)
    assert role_url("worker") == with_user(admin, database.WORKER_ROLE)
    assert role_url("app") == with_user(admin, database.APP_ROLE)
    with pytest.raises(ValueError, match="one of app, worker, owner"):
        role_url("admin")


def test_provision_makes_the_worker_and_keeps_the_app_role_bound(db):
    """Idempotent: run again on the test database's server, as every `make` does."""
    url = urlunsplit(urlsplit(admin_url())._replace(path=f"/{connection.settings_dict['NAME']}"))
    provision(url)
    provision(url)
    admin = connect(url)
    try:
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT rolname, rolsuper, rolbypassrls, rolcreaterole,"
                " pg_has_role(rolname, %s, 'MEMBER'), pg_has_role(rolname, %s, 'MEMBER'),"
                " pg_has_role(rolname, %s, 'MEMBER')"
                " FROM pg_roles WHERE rolname = ANY(%s) ORDER BY rolname",
                [
                    database.APP_ROLE,
                    database.WORKER_ROLE,
                    database.OWNER_ROLE,
                    [database.APP_ROLE, database.WORKER_ROLE, database.OWNER_ROLE],
                ],
            )
            roles = {name: flags for name, *flags in cursor.fetchall()}
    finally:
        admin.close()
    # superuser, BYPASSRLS, CREATEROLE, member of app, of worker, of owner
    assert roles == {
        database.APP_ROLE: [False, False, False, True, False, False],
        database.WORKER_ROLE: [False, True, False, True, True, False],
        database.OWNER_ROLE: [False, True, False, False, False, True],
    }
