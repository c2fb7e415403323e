"""The Django admin is a second door to users and roles: its writes are audited like the API's."""

import pytest
from django.test import Client

from audit.models import AuditLog
from tenancy.models import UserRole
from tests.factories import UserFactory, UserRoleFactory

pytestmark = pytest.mark.django_db

USERS = "/admin/tenancy/user/"
ROLES = "role_assignments"  # the inline formset's prefix
PASSWORD = "a-long-enough-passphrase"


@pytest.fixture
def staff_admin(tenant):
    return UserFactory(tenant=tenant, is_tenant_admin=True, is_staff=True)


@pytest.fixture
def browser(staff_admin) -> Client:
    browser = Client(HTTP_USER_AGENT="AdminBrowser/1.0", REMOTE_ADDR="198.51.100.20")
    browser.force_login(staff_admin)
    return browser


def user_form(user, **overrides) -> dict:
    return {
        "email": user.email,
        "full_name": user.full_name,
        "tenant": str(user.tenant_id),
        "is_active": "on",
        **overrides,
    }


def roles_form(*rows, initial: int = 0) -> dict:
    data = {f"{ROLES}-TOTAL_FORMS": str(len(rows)), f"{ROLES}-INITIAL_FORMS": str(initial)}
    for number, row in enumerate(rows):
        data.update({f"{ROLES}-{number}-{key}": value for key, value in row.items()})
    return data


def only_row(**filters) -> AuditLog:
    (row,) = AuditLog.objects.filter(**filters)
    return row


def test_adding_a_user_is_audited(browser, staff_admin):
    response = browser.post(
        f"{USERS}add/",
        {
            "email": "admin.added@example.com",
            "full_name": "Admin Added",
            "password1": PASSWORD,
            "password2": PASSWORD,
            **roles_form(),
        },
        HTTP_X_REQUEST_ID="admin-add-1",
    )
    assert response.status_code == 302

    row = only_row(action="user_created")
    assert row.actor_id == staff_admin.pk
    assert row.tenant_id == staff_admin.tenant_id
    assert row.changes == {
        "email": [None, "admin.added@example.com"],
        "full_name": [None, "Admin Added"],
    }
    assert (row.request_id, row.user_agent, row.ip_address) == (
        "admin-add-1",
        "AdminBrowser/1.0",
        "198.51.100.20",
    )


def test_changing_a_users_access_is_audited_with_old_and_new(browser, staff_admin, user):
    response = browser.post(
        f"{USERS}{user.pk}/change/",
        {**user_form(user, is_tenant_admin="on", full_name="Promoted"), **roles_form()},
    )
    assert response.status_code == 302

    row = only_row(action="user_updated")
    assert row.actor_id == staff_admin.pk
    assert row.resource_type == "user"
    assert row.resource_id == str(user.pk)
    assert row.changes == {
        "full_name": [user.full_name, "Promoted"],
        "is_tenant_admin": [False, True],
    }


def test_saving_a_user_unchanged_writes_nothing(browser, user):
    response = browser.post(f"{USERS}{user.pk}/change/", {**user_form(user), **roles_form()})
    assert response.status_code == 302
    assert not AuditLog.objects.exists()


def test_roles_added_edited_and_removed_inline_are_audited(browser, staff_admin, user):
    kept = UserRoleFactory(user=user, role="legal", permissions=[])
    dropped = UserRoleFactory(user=user, role="finance", permissions=[])
    response = browser.post(
        f"{USERS}{user.pk}/change/",
        {
            **user_form(user),
            **roles_form(
                {
                    "id": str(kept.pk),
                    "user": str(user.pk),
                    "role": "legal",
                    "permissions": "audit.view",
                },
                {"id": str(dropped.pk), "user": str(user.pk), "role": "finance", "DELETE": "on"},
                {"user": str(user.pk), "role": "procurement"},
                initial=2,
            ),
        },
    )
    assert response.status_code == 302, response.context and response.context["errors"]

    added = UserRole.objects.get(user=user, role="procurement")
    assert only_row(action="role_assigned").resource_id == str(added.pk)
    assert only_row(action="role_assigned").changes == {
        "user": [None, str(user.pk)],
        "role": [None, "procurement"],
        "permissions": [None, []],
    }
    assert only_row(action="role_updated").changes == {"permissions": [[], ["audit.view"]]}
    revoked = only_row(action="role_revoked")
    assert revoked.resource_id == str(dropped.pk)
    assert revoked.changes["role"] == ["finance", None]
    assert not UserRole.objects.filter(pk=dropped.pk).exists()
    assert set(AuditLog.objects.values_list("actor_id", flat=True)) == {staff_admin.pk}
