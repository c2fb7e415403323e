"""Shared fixtures: tenants, users, authenticated API clients.

`api_client_for(user)` returns a DRF APIClient carrying a real JWT for that user, so every test
goes through the same authentication path as production.
"""

import os

import dj_database_url
import pytest
from django.db import connections
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from config.database import role_url
from tenancy import rls
from tests.factories import TenantFactory, UserFactory, UserRoleFactory

# CI replays the same examples on every run (reproducible verdicts on a submission); a developer's
# runs keep exploring new ones, and what they find becomes a regression test.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The owner role created and migrated the test database; the tests run as the app role.

    So every query of every test is bound by row-level security exactly as in production. The
    app role may also TRUNCATE here, which Django's flush between transactional tests needs.
    """
    connection = connections["default"]
    owner = {key: connection.settings_dict[key] for key in ("USER", "PASSWORD")}
    app = dj_database_url.parse(role_url("app"))
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        role = connection.ops.quote_name(app["USER"])
        cursor.execute(f"GRANT TRUNCATE ON ALL TABLES IN SCHEMA public TO {role}")
    connection.close()
    # The settings dict is shared with every thread's connection, so threads connect as app too.
    connection.settings_dict.update(USER=app["USER"], PASSWORD=app["PASSWORD"])
    yield
    connection.close()
    connection.settings_dict.update(owner)


@pytest.fixture(autouse=True)
def _rls_bypass_for_test_code():
    """Test code builds and inspects rows of several tenants directly, as an operator would.

    Requests made through the test client are not bypassed: ``RowLevelSecurityMiddleware`` starts
    each one with no scope, and authentication narrows it to the caller's tenant.
    """
    with rls.bypass("test set-up and assertions"):
        yield


@pytest.fixture(autouse=True)
def _fast_and_unthrottled(settings):
    """Hashing dominates auth-heavy suites; throttling is tested on its own."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.AUTH_THROTTLE_RATE = None
    settings.USER_WRITE_THROTTLE_RATE = None
    settings.LOGIN_BACKOFF_FAILURES = 0


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def api_client_for():
    def make(user) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
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
