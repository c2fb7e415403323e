"""Audit fixtures: an `audit.view` holder, a fast way to write many audit rows, the audit trail's
scene."""

import uuid
from datetime import timedelta

import pytest

from audit.models import AuditLog
from core import rls
from tenancy.capabilities import AUDIT_VIEW
from tests.factories import UserFactory, UserRoleFactory
from tests.fixtures import BASE_TIME, Scene


@pytest.fixture
def auditor(tenant):
    """A plain member whose only capability is `audit.view`."""
    user = UserFactory(tenant=tenant)
    UserRoleFactory(user=user, role="auditor", permissions=[AUDIT_VIEW])
    return user


@pytest.fixture
def auditor_client(api_client_for, auditor):
    return api_client_for(auditor)


@pytest.fixture
def write_rows():
    """`write_rows(tenant, n, **fields)`: n rows one minute apart (newest last), in one INSERT.

    Written in ``tenant``'s scope, whatever the test's.

    `created_at` may be given to make every row share one instant (ties for the cursor).
    """

    def write(tenant, count: int, **fields) -> list[AuditLog]:
        rows = []
        for number in range(count):
            values = {
                "action": "contract_updated",
                "resource_type": "contract",
                "resource_id": str(uuid.uuid4()),
                "changes": {"title": [f"v{number}", f"v{number + 1}"]},
                "created_at": BASE_TIME + timedelta(minutes=number),
                **fields,
            }
            rows.append(AuditLog(tenant=tenant, **values))
        with rls.tenant_scope(tenant):
            return AuditLog.objects.bulk_create(rows)

    return write


# --- the scene every audit trail case starts from (tests/audit/test_audit_trail*.py) -------------


@pytest.fixture
def scene(tenant, api_client_for, role_holder):
    return Scene(
        tenant=tenant,
        admin=UserFactory(tenant=tenant, is_tenant_admin=True),
        requester=UserFactory(tenant=tenant),
        legal=role_holder("legal"),
        finance=role_holder("finance"),
        client_for=api_client_for,
    )
