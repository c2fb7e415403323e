"""Tenant users and role assignments: /api/admin/users/ and /api/admin/users/roles/."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditLog
from core import rls
from tenancy.models import User, UserRole
from tests.factories import UserFactory, UserRoleFactory

pytestmark = pytest.mark.django_db

USERS = "/api/admin/users/"
ROLES = "/api/admin/users/roles/"
ME = "/api/auth/me/"
TOKEN = "/api/auth/token/"


def new_user_body(**overrides) -> dict:
    return {
        "email": "new.hire@example.com",
        "password": "a-long-enough-passphrase",
        "full_name": "Nina Newhire",
        **overrides,
    }


def assert_400_on(response, field: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    assert any(
        key == field or key.startswith((f"{field}.", f"{field}[")) for key in body["fields"]
    ), body


# --------------------------------------------------------------------------- users: list


def test_any_member_lists_only_their_tenants_users(client, user, tenant_admin, other_tenant):
    UserFactory(tenant=other_tenant)

    response = client.get(USERS)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2
    assert {row["email"] for row in body["results"]} == {user.email, tenant_admin.email}
    row = next(row for row in body["results"] if row["id"] == str(tenant_admin.pk))
    assert set(row) == {
        "id",
        "email",
        "full_name",
        "is_tenant_admin",
        "is_active",
        "date_joined",
        "manager",
    }
    assert row["is_tenant_admin"] is True
    assert "password" not in response.content.decode()


def test_user_detail_of_another_tenant_is_404(client, user, other_tenant):
    stranger = UserFactory(tenant=other_tenant)
    assert client.get(f"{USERS}{user.pk}/").status_code == 200
    response = client.get(f"{USERS}{stranger.pk}/")
    assert response.status_code == 404
    assert stranger.email not in response.content.decode()


def test_user_list_filters(client, user, tenant_admin):
    response = client.get(USERS, {"is_tenant_admin": "true"})
    assert [row["id"] for row in response.json()["results"]] == [str(tenant_admin.pk)]


def test_users_require_authentication(api_client, user):
    assert api_client.get(USERS).status_code == 401
    assert api_client.post(USERS, new_user_body(), format="json").status_code == 401


def test_platform_superuser_has_no_api_access(api_client, api_client_for, db):
    root = User.objects.create_superuser("root@example.com", "a-long-enough-passphrase")
    login = {"email": "root@example.com", "password": "a-long-enough-passphrase"}
    assert api_client.post(TOKEN, login).status_code == 401
    # A token the login never issues (no tenant) is refused too.
    assert api_client_for(root).get(USERS).status_code == 401


# --------------------------------------------------------------------------- users: create


def test_tenant_admin_creates_user_in_own_tenant(admin_client, tenant_admin, api_client):
    response = admin_client.post(USERS, new_user_body(), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["email"] == "new.hire@example.com"
    assert body["full_name"] == "Nina Newhire"
    assert body["is_tenant_admin"] is False
    assert body["is_active"] is True
    assert "password" not in body
    created = User.objects.get(pk=body["id"])
    assert created.tenant_id == tenant_admin.tenant_id
    assert created.check_password("a-long-enough-passphrase")

    row = AuditLog.objects.get(action="user_created")
    assert row.actor_id == tenant_admin.pk
    assert row.tenant_id == tenant_admin.tenant_id
    assert row.resource_id == str(created.pk)
    assert row.changes["email"] == [None, "new.hire@example.com"]
    assert "a-long-enough-passphrase" not in str(row.changes)

    login = api_client.post(
        TOKEN, {"email": "new.hire@example.com", "password": "a-long-enough-passphrase"}
    )
    assert login.status_code == 200


def test_users_manage_role_may_create_users(api_client_for, role_holder, tenant):
    manager = role_holder("hr", permissions=["users.manage"])
    response = api_client_for(manager).post(USERS, new_user_body(), format="json")
    assert response.status_code == 201, response.json()
    assert User.objects.get(email="new.hire@example.com").tenant_id == tenant.pk
    assert AuditLog.objects.get(action="user_created").actor_id == manager.pk


def test_plain_member_cannot_create_users(client):
    response = client.post(USERS, new_user_body(), format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert not User.objects.filter(email="new.hire@example.com").exists()
    assert not AuditLog.objects.filter(action="user_created").exists()


def test_other_capabilities_do_not_allow_creating_users(api_client_for, role_holder):
    holder = role_holder("ops", permissions=["roles.manage", "workflows.manage"])
    assert api_client_for(holder).post(USERS, new_user_body(), format="json").status_code == 403


def test_create_ignores_privileged_fields(admin_client, tenant_admin, other_tenant):
    response = admin_client.post(
        USERS,
        new_user_body(
            is_tenant_admin=True,
            is_staff=True,
            is_superuser=True,
            tenant=str(other_tenant.pk),
            id=str(uuid.uuid4()),
        ),
        format="json",
    )
    assert response.status_code == 201, response.json()
    created = User.objects.get(email="new.hire@example.com")
    assert created.tenant_id == tenant_admin.tenant_id
    assert not created.is_tenant_admin
    assert not created.is_staff
    assert not created.is_superuser


def test_email_is_stored_lower_cased(admin_client):
    response = admin_client.post(USERS, new_user_body(email="Mixed.Case@Example.COM"))
    assert response.status_code == 201
    assert response.json()["email"] == "mixed.case@example.com"


@pytest.mark.parametrize("transform", [str, str.upper])
def test_duplicate_email_is_400(admin_client, user, transform):
    response = admin_client.post(USERS, new_user_body(email=transform(user.email)), format="json")
    assert_400_on(response, "email")
    assert User.objects.filter(email=user.email).count() == 1


def test_email_taken_in_another_tenant_is_400(admin_client, other_tenant):
    stranger = UserFactory(tenant=other_tenant)
    assert_400_on(admin_client.post(USERS, new_user_body(email=stranger.email)), "email")


@pytest.mark.parametrize(
    "password",
    ["short", "12345678901", "password123", "new.hire@example.com", "x" * 129],
)
def test_weak_password_is_400(admin_client, password):
    response = admin_client.post(USERS, new_user_body(password=password), format="json")
    assert_400_on(response, "password")
    assert not User.objects.filter(email="new.hire@example.com").exists()
    assert not AuditLog.objects.filter(action="user_created").exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": ""}, "email"),
        ({"full_name": ""}, "full_name"),
        ({"full_name": "x" * 201}, "full_name"),
        ({"full_name": "nul\x00name"}, "full_name"),
        ({"password": None}, "password"),
    ],
)
def test_invalid_user_input_is_400(admin_client, overrides, field):
    response = admin_client.post(USERS, new_user_body(**overrides), format="json")
    assert_400_on(response, field)


def test_users_endpoint_changes_only_the_manager_and_deletes_nothing(admin_client, user):
    response = admin_client.patch(f"{USERS}{user.pk}/", {"full_name": "x"})
    assert response.status_code == 400
    assert "manager" in response.json()["fields"]
    assert admin_client.put(f"{USERS}{user.pk}/", {"full_name": "x"}).status_code == 405
    assert admin_client.delete(f"{USERS}{user.pk}/").status_code == 405
    user.refresh_from_db()
    assert user.full_name != "x"
    assert User.objects.filter(pk=user.pk).exists()


# --------------------------------------------------------------------------- roles: create


def role_body(user, **overrides) -> dict:
    return {"user": str(user.pk), "role": "legal", "permissions": ["audit.view"], **overrides}


def test_tenant_admin_assigns_a_role(admin_client, tenant_admin, user):
    expires = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    response = admin_client.post(
        ROLES,
        role_body(
            user,
            permissions=["workflows.manage", "audit.view", "audit.view"],
            expires_at=expires.isoformat(),
        ),
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == {
        "id",
        "user",
        "role",
        "permissions",
        "assigned_by",
        "created_at",
        "expires_at",
    }
    assert body["user"] == str(user.pk)
    assert body["role"] == "legal"
    assert body["permissions"] == ["audit.view", "workflows.manage"]
    assert body["assigned_by"] == str(tenant_admin.pk)
    assert body["expires_at"] is not None
    assignment = UserRole.objects.get(pk=body["id"])
    assert assignment.tenant_id == user.tenant_id
    assert assignment.expires_at == expires

    row = AuditLog.objects.get(action="role_assigned")
    assert row.actor_id == tenant_admin.pk
    assert row.resource_id == body["id"]
    assert row.changes["role"] == [None, "legal"]
    assert row.changes["user"] == [None, str(user.pk)]


def test_assigned_by_comes_from_the_token(admin_client, tenant_admin, user, tenant):
    someone_else = UserFactory(tenant=tenant)
    response = admin_client.post(
        ROLES,
        role_body(user, assigned_by=str(someone_else.pk), tenant=str(uuid.uuid4())),
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["assigned_by"] == str(tenant_admin.pk)
    assignment = UserRole.objects.get(pk=response.json()["id"])
    assert assignment.assigned_by_id == tenant_admin.pk
    assert assignment.tenant_id == tenant.pk


def test_roles_manage_capability_may_assign(api_client_for, role_holder, user):
    manager = role_holder("people-ops", permissions=["roles.manage", "audit.view"])
    response = api_client_for(manager).post(ROLES, role_body(user), format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["assigned_by"] == str(manager.pk)


def test_roles_manage_cannot_grant_capabilities_it_does_not_hold(api_client_for, role_holder, user):
    manager = role_holder("people-ops", permissions=["roles.manage"])
    response = api_client_for(manager).post(
        ROLES, role_body(user, permissions=["users.manage", "webhooks.manage"]), format="json"
    )
    assert response.status_code == 403
    assert "users.manage" in response.json()["detail"]
    assert not UserRole.objects.filter(user=user).exists()


def test_role_without_permissions_defaults_to_none(admin_client, user):
    response = admin_client.post(ROLES, {"user": str(user.pk), "role": "finance"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["permissions"] == []
    assert response.json()["expires_at"] is None


def test_role_slug_is_lower_cased(admin_client, user):
    response = admin_client.post(ROLES, role_body(user, role="Legal"), format="json")
    assert response.status_code == 201
    assert response.json()["role"] == "legal"


@pytest.mark.parametrize(
    "permissions", [["everything"], ["audit.view", "root"], ["AUDIT.VIEW"], "audit.view", [1]]
)
def test_unknown_capability_is_400(admin_client, user, permissions):
    response = admin_client.post(ROLES, role_body(user, permissions=permissions), format="json")
    assert_400_on(response, "permissions")
    assert not UserRole.objects.exists()


def test_user_of_another_tenant_is_400(admin_client, other_tenant):
    stranger = UserFactory(tenant=other_tenant)
    response = admin_client.post(ROLES, role_body(stranger), format="json")
    assert_400_on(response, "user")
    assert not UserRole.objects.exists()


@pytest.mark.parametrize(
    "user_id", ["00000000-0000-4000-8000-000000000000", "not-a-uuid", 42, None]
)
def test_unknown_or_malformed_user_is_400(admin_client, db, user_id):
    response = admin_client.post(ROLES, {"user": user_id, "role": "legal"}, format="json")
    assert_400_on(response, "user")


def test_duplicate_role_is_400(admin_client, user):
    UserRoleFactory(user=user, role="legal")
    response = admin_client.post(ROLES, role_body(user, role="LEGAL"), format="json")
    assert_400_on(response, "role")
    assert UserRole.objects.filter(user=user).count() == 1
    assert not AuditLog.objects.filter(action="role_assigned").exists()


def test_same_role_for_another_user_is_fine(admin_client, user, tenant):
    UserRoleFactory(user=user, role="legal")
    colleague = UserFactory(tenant=tenant)
    assert admin_client.post(ROLES, role_body(colleague), format="json").status_code == 201


@pytest.mark.parametrize(
    "expires_at",
    [
        lambda: (timezone.now() - timedelta(minutes=1)).isoformat(),
        lambda: "2000-01-01T00:00:00Z",
    ],
)
def test_expires_at_in_the_past_is_400(admin_client, user, expires_at):
    response = admin_client.post(ROLES, role_body(user, expires_at=expires_at()), format="json")
    assert_400_on(response, "expires_at")
    assert not UserRole.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"role": ""}, "role"),
        ({"role": "has space"}, "role"),
        ({"role": "x" * 51}, "role"),
        ({"role": "nul\x00"}, "role"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"expires_at": "9999-12-31T23:59:59-12:00"}, "expires_at"),
    ],
)
def test_invalid_role_input_is_400(admin_client, user, overrides, field):
    assert_400_on(admin_client.post(ROLES, role_body(user, **overrides), format="json"), field)


def test_plain_member_cannot_assign_or_list_roles(client, user):
    assert client.post(ROLES, role_body(user), format="json").status_code == 403
    assert client.get(ROLES).status_code == 403
    assert not UserRole.objects.exists()


def test_users_manage_does_not_imply_roles_manage(api_client_for, role_holder, user):
    holder = role_holder("hr", permissions=["users.manage"])
    assert api_client_for(holder).post(ROLES, role_body(user), format="json").status_code == 403


# --------------------------------------------------------------------------- roles: list, revoke


def test_role_list_is_tenant_scoped(admin_client, user, other_tenant):
    mine = UserRoleFactory(user=user, role="legal")
    UserRoleFactory(user=UserFactory(tenant=other_tenant), role="legal")

    response = admin_client.get(ROLES)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["results"][0]["id"] == str(mine.pk)
    assert body["results"][0]["user"] == str(user.pk)


def test_role_list_filters_by_user_and_role(admin_client, user, tenant):
    legal = UserRoleFactory(user=user, role="legal")
    UserRoleFactory(user=user, role="finance")
    UserRoleFactory(user=UserFactory(tenant=tenant), role="legal")

    by_both = admin_client.get(ROLES, {"user": str(user.pk), "role": "legal"}).json()
    assert [row["id"] for row in by_both["results"]] == [str(legal.pk)]
    assert admin_client.get(ROLES, {"role": "legal"}).json()["count"] == 2
    assert admin_client.get(ROLES, {"user": "garbage"}).status_code == 400


def test_revoke_role_is_204_and_audited(admin_client, tenant_admin, user):
    assignment = UserRoleFactory(user=user, role="legal", permissions=["audit.view"])

    response = admin_client.delete(f"{ROLES}{assignment.pk}/")

    assert response.status_code == 204
    assert not UserRole.objects.filter(pk=assignment.pk).exists()
    row = AuditLog.objects.get(action="role_revoked")
    assert row.actor_id == tenant_admin.pk
    assert row.tenant_id == user.tenant_id
    assert row.resource_type == "userrole"
    assert row.resource_id == str(assignment.pk)
    assert row.changes["role"] == ["legal", None]
    assert row.changes["user"] == [str(user.pk), None]
    assert admin_client.delete(f"{ROLES}{assignment.pk}/").status_code == 404


def test_revoking_another_tenants_role_is_404(admin_client, other_tenant):
    foreign = UserRoleFactory(user=UserFactory(tenant=other_tenant), role="legal")
    assert admin_client.delete(f"{ROLES}{foreign.pk}/").status_code == 404
    with rls.bypass("the other tenant's role, untouched; no tenant audited a revocation"):
        assert UserRole.objects.filter(pk=foreign.pk).exists()
        assert not AuditLog.objects.filter(action="role_revoked").exists()


def test_plain_member_cannot_revoke(client, user):
    assignment = UserRoleFactory(user=user, role="legal")
    assert client.delete(f"{ROLES}{assignment.pk}/").status_code == 403
    assert UserRole.objects.filter(pk=assignment.pk).exists()


def test_revoked_capability_stops_working(api_client_for, role_holder):
    manager = role_holder("hr", permissions=["users.manage"])
    client = api_client_for(manager)
    assert client.post(USERS, new_user_body(), format="json").status_code == 201
    UserRole.objects.filter(user=manager).delete()
    second = new_user_body(email="second@example.com")
    assert client.post(USERS, second, format="json").status_code == 403


# --------------------------------------------------------------------------- expiry and /me


def test_expired_role_grants_nothing(api_client_for, role_holder):
    manager = role_holder(
        "hr", permissions=["users.manage"], expires_at=timezone.now() + timedelta(days=1)
    )
    client = api_client_for(manager)
    assert client.get(ME).json()["roles"] == ["hr"]
    assert client.post(USERS, new_user_body(), format="json").status_code == 201

    UserRole.objects.filter(user=manager).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = client.post(USERS, new_user_body(email="late@example.com"), format="json")
    assert response.status_code == 403
    assert not User.objects.filter(email="late@example.com").exists()
    assert client.get(ME).json()["roles"] == []


def test_expired_roles_manage_cannot_assign_roles(api_client_for, role_holder, user):
    manager = role_holder(
        "people-ops", permissions=["roles.manage"], expires_at=timezone.now() + timedelta(hours=1)
    )
    UserRole.objects.filter(user=manager).update(expires_at=timezone.now() - timedelta(hours=1))
    client = api_client_for(manager)
    assert client.post(ROLES, role_body(user), format="json").status_code == 403
    assert client.get(ROLES).status_code == 403


def test_me_lists_active_roles_sorted(api_client_for, user):
    UserRoleFactory(user=user, role="legal")
    UserRoleFactory(user=user, role="finance", expires_at=timezone.now() + timedelta(days=1))
    UserRoleFactory(user=user, role="cfo", expires_at=timezone.now() + timedelta(days=1))
    UserRole.objects.filter(user=user, role="cfo").update(
        expires_at=timezone.now() - timedelta(days=1)
    )

    body = api_client_for(user).get(ME).json()

    assert body["roles"] == ["finance", "legal"]
    assert body["is_tenant_admin"] is False
    assert body["tenant"]["id"] == str(user.tenant_id)


def test_role_assigned_through_the_api_shows_in_me(admin_client, api_client_for, user):
    assert api_client_for(user).get(ME).json()["roles"] == []
    admin_client.post(ROLES, role_body(user, role="ceo"), format="json")
    assert api_client_for(user).get(ME).json()["roles"] == ["ceo"]
