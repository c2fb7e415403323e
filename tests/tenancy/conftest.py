"""The throttles' stores, for the tests that turn throttling on (tests/conftest.py turns it off),
and the tenant isolation tests' caller."""

import uuid
from dataclasses import dataclass

import pytest
from django.db.models.functions import Now

from tenancy import ratelimit
from tenancy.models import RateLimitCounter
from tests.factories import UserFactory, UserRoleFactory
from tests.fixtures import APPROVER_ROLE

REDIS_URL = "redis://127.0.0.1:6379/0"  # the real server, here and in CI


@dataclass
class Backend:
    name: str

    @property
    def store(self):
        return ratelimit.store()

    def pass_block(self, key: str) -> None:
        """Let ``key``'s login back-off run out, as if its time had passed; its count stays."""
        if self.name == "redis":
            self.store.client.hset(self.store.prefix + key, "b", 0)
        else:
            RateLimitCounter.objects.filter(key=key).update(blocked_until=Now())

    def close_window(self, key: str) -> None:
        """Let ``key``'s window run out, as if its time had passed."""
        if self.name == "redis":
            self.store.client.delete(self.store.prefix + key)  # what Redis's expiry does
        else:
            RateLimitCounter.objects.filter(key=key).update(expires_at=Now(), blocked_until=None)


@pytest.fixture(params=["postgres", "redis"])
def backend(request, settings):
    """Each store in turn; Redis under a key prefix of this test's own, deleted afterwards."""
    prefix = f"clm-test:{uuid.uuid4().hex}:"
    settings.REDIS_URL = REDIS_URL if request.param == "redis" else ""
    settings.RATE_LIMIT_REDIS_PREFIX = prefix
    yield Backend(request.param)
    if request.param == "redis":
        client = ratelimit.store().client
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)


@pytest.fixture
def caller(tenant):
    """Tenant A's admin: holds every capability (and the approver role), so only tenancy stops."""
    admin = UserFactory(tenant=tenant, is_tenant_admin=True)
    UserRoleFactory(user=admin, role=APPROVER_ROLE)
    return admin


@pytest.fixture
def client_a(api_client_for, caller):
    return api_client_for(caller)
