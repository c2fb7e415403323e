from datetime import timedelta

import pytest
from rest_framework_simplejwt.tokens import RefreshToken

from audit.models import AuditLog
from core import rls
from tenancy.models import Tenant, User
from tests.factories import FACTORY_PASSWORD

pytestmark = pytest.mark.django_db

REGISTER = "/api/auth/register/"
TOKEN = "/api/auth/token/"
REFRESH = "/api/auth/token/refresh/"
LOGOUT = "/api/auth/logout/"
ME = "/api/auth/me/"


def register(api_client, **overrides):
    body = {
        "email": "founder@example.com",
        "password": "a-long-enough-passphrase",
        "full_name": "Fran Founder",
        "tenant_name": "Founders Inc",
        **overrides,
    }
    return api_client.post(REGISTER, body, format="json")


def test_register_creates_tenant_and_admin_and_returns_tokens(api_client):
    response = register(api_client)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["user"]["email"] == "founder@example.com"
    assert body["user"]["is_tenant_admin"] is True
    assert body["tenant"]["slug"] == "founders-inc"
    with rls.tenant_scope(body["tenant"]["id"]):
        user = User.objects.get(email="founder@example.com")
        assert user.tenant.name == "Founders Inc"
        assert AuditLog.objects.filter(action="user_registered", actor=user).count() == 1
    me = api_client.get(ME, HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.status_code == 200
    assert me.json()["tenant"]["id"] == str(user.tenant_id)


def test_register_same_tenant_name_gets_distinct_slug(api_client):
    register(api_client)
    response = register(api_client, email="second@example.com")
    assert response.status_code == 201
    assert response.json()["tenant"]["slug"] == "founders-inc-2"
    assert Tenant.objects.count() == 2


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"password": "short"}, "password"),
        ({"password": "12345678901"}, "password"),
        ({"full_name": ""}, "full_name"),
        ({"tenant_name": "x" * 201}, "tenant_name"),
        ({"tenant_name": "nul\x00byte"}, "tenant_name"),
    ],
)
def test_register_rejects_bad_input_with_field_messages(api_client, overrides, field):
    response = register(api_client, **overrides)
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not User.objects.exists()


def test_register_duplicate_email_is_400_case_insensitive(api_client, user):
    response = register(api_client, email=user.email.upper())
    assert response.status_code == 400
    assert "email" in response.json()["fields"]


def test_token_login_and_me(api_client, user):
    response = api_client.post(TOKEN, {"email": user.email, "password": FACTORY_PASSWORD})
    assert response.status_code == 200
    access = response.json()["access"]
    me = api_client.get(ME, HTTP_AUTHORIZATION=f"Bearer {access}").json()
    assert me == {
        "id": str(user.pk),
        "email": user.email,
        "full_name": user.full_name,
        "tenant": {"id": str(user.tenant.pk), "name": user.tenant.name, "slug": user.tenant.slug},
        "is_tenant_admin": False,
        "roles": [],
    }
    assert AuditLog.objects.filter(action="login", actor=user).exists()


def test_wrong_password_is_401_and_audited(api_client, user):
    response = api_client.post(TOKEN, {"email": user.email, "password": "wrong-password"})
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    failed = AuditLog.objects.get(action="login_failed")
    assert failed.tenant_id == user.tenant_id
    assert failed.resource_id == str(user.pk)


def test_unknown_email_login_is_401_and_audited_without_tenant(api_client, db):
    response = api_client.post(TOKEN, {"email": "ghost@example.com", "password": "whatever-1"})
    assert response.status_code == 401
    with rls.platform_scope():
        assert AuditLog.objects.get(action="login_failed").tenant_id is None


def test_inactive_user_cannot_log_in(api_client, user):
    user.is_active = False
    user.save()
    response = api_client.post(TOKEN, {"email": user.email, "password": FACTORY_PASSWORD})
    assert response.status_code == 401


def test_refresh_rotates_and_blacklists_the_old_token(api_client, user):
    tokens = api_client.post(TOKEN, {"email": user.email, "password": FACTORY_PASSWORD}).json()

    rotated = api_client.post(REFRESH, {"refresh": tokens["refresh"]})
    assert rotated.status_code == 200
    assert set(rotated.json()) == {"access", "refresh"}
    assert rotated.json()["refresh"] != tokens["refresh"]

    reused = api_client.post(REFRESH, {"refresh": tokens["refresh"]})
    assert reused.status_code == 401
    again = api_client.post(REFRESH, {"refresh": rotated.json()["refresh"]})
    assert again.status_code == 200


def test_expired_refresh_is_401(api_client, user):
    token = RefreshToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=1))
    response = api_client.post(REFRESH, {"refresh": str(token)})
    assert response.status_code == 401


def test_garbage_refresh_is_401(api_client, db):
    assert api_client.post(REFRESH, {"refresh": "garbage"}).status_code == 401


def test_logout_blacklists_refresh(api_client_for, api_client, user):
    refresh = RefreshToken.for_user(user)
    response = api_client_for(user).post(LOGOUT, {"refresh": str(refresh)})
    assert response.status_code == 205
    assert api_client.post(REFRESH, {"refresh": str(refresh)}).status_code == 401
    assert AuditLog.objects.filter(action="logout", actor=user).exists()


def test_logout_of_someone_elses_token_is_400(api_client_for, user, tenant_admin):
    response = api_client_for(user).post(
        LOGOUT, {"refresh": str(RefreshToken.for_user(tenant_admin))}
    )
    assert response.status_code == 400


def test_logout_requires_authentication(api_client, user):
    response = api_client.post(LOGOUT, {"refresh": str(RefreshToken.for_user(user))})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "header",
    [None, "Bearer garbage", "Bearer ", "Token abc", "Bearer a.b.c"],
)
def test_me_without_valid_token_is_401_json(api_client, db, header):
    kwargs = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = api_client.get(ME, **kwargs)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert "code" in response.json()


def test_access_token_of_deleted_user_is_401(api_client_for, user):
    client = api_client_for(user)
    with rls.bypass("an operator deletes the user"):
        user.delete()
    assert client.get(ME).status_code == 401


def test_login_is_throttled(api_client, user, settings):
    settings.AUTH_THROTTLE_RATE = "3/min"
    statuses = [
        api_client.post(TOKEN, {"email": user.email, "password": "wrong"}).status_code
        for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
