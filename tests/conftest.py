"""Shared fixtures: tenants, users, authenticated API clients.

`api_client_for(user)` returns a DRF APIClient carrying a real JWT for that user, so every test
goes through the same authentication path as production.
"""

import os

import pytest
from django.conf import settings
from django.db import connections
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient

from config.database import admin_url, connect, role_name
from core import rls, rls_key
from tests.factories import TenantFactory, UserFactory, UserRoleFactory
from tests.fixtures import session_token

pytest_plugins = ["tests.browser"]

# CI replays the same examples on every run (reproducible verdicts on a submission); a developer's
# runs keep exploring new ones, and what they find becomes a regression test.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


# The tests log in as a role of their own: a member of the app and worker roles, NOINHERIT and with
# no privileges itself, so every statement runs as whichever of the two its scope names (a
# forgotten role switch fails loudly) and test code may bypass while requests run as the app role.
TEST_ROLE = os.environ.get("DATABASE_TEST_ROLE", "clm_tests")
_TEST_ROLE_SQL = """
DO $test_role$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{test}') THEN
    CREATE ROLE {test} LOGIN NOINHERIT;
  END IF;
END
$test_role$;
ALTER ROLE {test} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT LOGIN;
GRANT {app}, {worker} TO {test};
"""


def _provision_test_role(app: str, worker: str) -> None:
    """Created by a role that may create roles: ``DATABASE_ADMIN_URL``, else ``admin_url()``."""
    admin = connect(os.environ.get("DATABASE_ADMIN_URL") or admin_url(), dbname="postgres")
    try:
        with admin.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('clm.tests.role'))")
            cursor.execute(_TEST_ROLE_SQL.format(test=TEST_ROLE, app=app, worker=worker))
            password = os.environ.get("DATABASE_ROLE_PASSWORD")
            if password:
                cursor.execute(f"ALTER ROLE {TEST_ROLE} PASSWORD %s", [password])
            cursor.execute("COMMIT")
    finally:
        admin.close()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The owner role created and migrated the test database; the tests log in as ``TEST_ROLE``.

    So every query of every request runs as the app role, bound by row-level security exactly as
    in production. The app role may also TRUNCATE here (not the signing key), which Django's
    flush between transactional tests needs.
    """
    connection = connections["default"]
    owner = {key: connection.settings_dict[key] for key in ("USER", "PASSWORD", "SCOPE_ROLES")}
    app, worker = settings.DATABASE_APP_ROLE, role_name("worker")
    _provision_test_role(app, worker)
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(f"GRANT TRUNCATE ON ALL TABLES IN SCHEMA public TO {app}")
        cursor.execute(f"REVOKE ALL ON {rls_key.KEY_TABLE} FROM {app}")
    connection.close()
    # The settings dict is shared with every thread's connection, so threads log in so too.
    connection.settings_dict.update(
        USER=TEST_ROLE,
        PASSWORD=os.environ.get("DATABASE_ROLE_PASSWORD", ""),
        SCOPE_ROLES={"tenant": app, "bypass": worker},
    )
    yield
    connection.close()
    connection.settings_dict.update(owner)


def _test_body_scope(item):
    """The scope a test body runs in: its primary tenant's, as a request of that tenant would.

    The primary tenant is the ``tenant`` fixture's. So a service called from a test sees and
    writes that tenant's rows only, and one that is not tenant-safe fails. A test with no
    ``tenant`` runs with no scope, as a request does before authentication. Cross-tenant set-up
    and assertions enter ``rls.bypass`` themselves (factories do, see ``tests.factories``); a test
    that inspects several tenants throughout says so with ``@pytest.mark.rls_bypass(reason)``.
    """
    marker = item.get_closest_marker("rls_bypass")
    if marker is not None:
        return rls.bypass(f"test {item.name}: {marker.args[0]}")
    funcargs = getattr(item, "funcargs", {})
    if "tenant" in funcargs:
        return rls.tenant_scope(funcargs["tenant"])
    return rls.request_scope()


@pytest.fixture(autouse=True)
def _rls_bypass_for_set_up():
    """Fixtures build rows of several tenants, as an operator would: past row-level security.

    Set-up and tear-down run as the worker role; the test body runs in its own scope
    (``_test_body_scope``). Requests made through the test client are never bypassed:
    ``RowLevelSecurityMiddleware`` starts each one with no scope, as the app role, and
    authentication narrows it to the caller's tenant.
    """
    with rls.bypass("test set-up and tear-down"):
        yield


@pytest.hookimpl(hookwrapper=True, tryfirst=True)  # outside the call's log capture
def pytest_runtest_call(item):
    with _test_body_scope(item):
        yield


@pytest.fixture(autouse=True)
def _fast_and_unthrottled(settings):
    """Hashing dominates auth-heavy suites; throttling is tested on its own."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.AUTH_THROTTLE_RATE = None
    settings.USER_WRITE_THROTTLE_RATE = None
    settings.LINK_THROTTLE_RATE = None
    settings.LOGIN_BACKOFF_FAILURES = 0


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def api_client_for():
    def make(user) -> APIClient:
        client = APIClient()
        token = session_token(user).access_token
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return make


@pytest.fixture
def tenant(db):
    return TenantFactory()


@pytest.fixture
def other_tenant(db):
    return TenantFactory()


@pytest.fixture
def user(tenant):
    """A plain member of `tenant` with no roles."""
    return UserFactory(tenant=tenant)


@pytest.fixture
def tenant_admin(tenant):
    return UserFactory(tenant=tenant, is_tenant_admin=True)


@pytest.fixture
def role_holder(tenant):
    """`role_holder("legal", permissions=[...])` creates a user of `tenant` holding that role."""

    def make(role: str, **kwargs):
        return UserRoleFactory(user=UserFactory(tenant=tenant), role=role, **kwargs).user

    return make


@pytest.fixture
def client(api_client_for, user):
    """An API client authenticated as `user`."""
    return api_client_for(user)


@pytest.fixture
def admin_client(api_client_for, tenant_admin):
    return api_client_for(tenant_admin)
