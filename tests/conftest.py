"""Shared fixtures: tenants, users, authenticated API clients.

`api_client_for(user)` returns a DRF APIClient carrying a real JWT for that user, so every test
goes through the same authentication path as production.
"""

import os

import pytest
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from tests.factories import TenantFactory, UserFactory, UserRoleFactory

# CI replays the same examples on every run (reproducible verdicts on a submission); a developer's
# runs keep exploring new ones, and what they find becomes a regression test.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _fast_and_unthrottled(settings):
    """Hashing dominates auth-heavy suites; throttling is tested on its own."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.AUTH_THROTTLE_RATE = None


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
