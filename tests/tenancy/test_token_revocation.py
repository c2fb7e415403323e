"""Revocation (finding 5): a password change, a reset, logout-all and deactivation end every
session of the user at once; refresh of a deleted user's token is a 401; sessions are capped."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import datetime_to_epoch

from audit.models import AuditLog
from core import rls
from tenancy.tokens import SessionRefreshToken
from tests.factories import FACTORY_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

TOKEN = "/api/auth/token/"
REFRESH = "/api/auth/token/refresh/"
PASSWORD = "/api/auth/password/"
LOGOUT_ALL = "/api/auth/logout-all/"
ME = "/api/auth/me/"
NEW_PASSWORD = "a-brand-new-passphrase"


def login(user, password=FACTORY_PASSWORD) -> dict:
    response = APIClient().post(TOKEN, {"email": user.email, "password": password})
    assert response.status_code == 200, response.json()
    return response.json()


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def refresh(token: str):
    return APIClient().post(REFRESH, {"refresh": token})


def assert_session_dead(tokens: dict) -> None:
    me = bearer(tokens["access"]).get(ME)
    assert me.status_code == 401
    assert me.json()["code"] == "token_revoked"
    assert refresh(tokens["refresh"]).status_code == 401


def test_password_change_ends_every_session_and_the_new_password_works(user):
    first, second = login(user), login(user)
    rotated = refresh(second["refresh"]).json()  # a rotated token of a session dies as well

    response = bearer(first["access"]).post(
        PASSWORD, {"old_password": FACTORY_PASSWORD, "new_password": NEW_PASSWORD}
    )

    assert response.status_code == 204
    for tokens in (first, second, rotated):
        assert_session_dead(tokens)
    assert (
        APIClient().post(TOKEN, {"email": user.email, "password": FACTORY_PASSWORD}).status_code
        == 401
    )
    fresh = login(user, NEW_PASSWORD)
    assert bearer(fresh["access"]).get(ME).status_code == 200
    assert refresh(fresh["refresh"]).status_code == 200
    assert AuditLog.objects.filter(action="password_changed", actor=user).count() == 1


def test_password_change_blacklists_every_outstanding_refresh_token(user):
    login(user)
    login(user)
    bearer(login(user)["access"]).post(
        PASSWORD, {"old_password": FACTORY_PASSWORD, "new_password": NEW_PASSWORD}
    )
    outstanding = OutstandingToken.objects.filter(user=user)
    assert outstanding.count() == 3
    assert BlacklistedToken.objects.filter(token__in=outstanding).count() == 3


def test_wrong_old_password_is_400_and_changes_nothing(user):
    tokens = login(user)
    response = bearer(tokens["access"]).post(
        PASSWORD, {"old_password": "not-my-password", "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["old_password"]
    assert bearer(tokens["access"]).get(ME).status_code == 200
    assert refresh(tokens["refresh"]).status_code == 200
    user.refresh_from_db()
    assert user.check_password(FACTORY_PASSWORD)
    assert not AuditLog.objects.filter(action="password_changed").exists()


@pytest.mark.parametrize("weak", ["short", "12345678901", "password123"])
def test_weak_new_password_is_400_with_messages(user, weak):
    tokens = login(user)
    response = bearer(tokens["access"]).post(
        PASSWORD, {"old_password": FACTORY_PASSWORD, "new_password": weak}
    )
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["new_password"]
    assert response.json()["fields"]["new_password"]
    user.refresh_from_db()
    assert user.check_password(FACTORY_PASSWORD)
    assert bearer(tokens["access"]).get(ME).status_code == 200


def test_logout_all_is_205_and_kills_both_tokens(user):
    first, second = login(user), login(user)
    response = bearer(first["access"]).post(LOGOUT_ALL)
    assert response.status_code == 205
    assert_session_dead(first)
    assert_session_dead(second)
    assert AuditLog.objects.filter(action="logout_all", actor=user).count() == 1
    assert bearer(login(user)["access"]).get(ME).status_code == 200


def test_logout_all_does_not_touch_other_users(user, tenant_admin):
    mine, theirs = login(user), login(tenant_admin)
    bearer(mine["access"]).post(LOGOUT_ALL)
    assert bearer(theirs["access"]).get(ME).status_code == 200
    assert refresh(theirs["refresh"]).status_code == 200


def test_tokens_without_the_tenant_claim_are_refused_with_sign_in_again(user):
    """Tokens minted before the claim existed (as plain simplejwt mints them): the request cannot
    know the tenant to read the user in (``tenancy_user`` is under row-level security)."""
    legacy = RefreshToken.for_user(user)

    for response in (bearer(str(legacy.access_token)).get(ME), refresh(str(legacy))):
        assert response.status_code == 401
        assert response.json()["code"] == "token_not_valid"
        assert "sign in again" in response.json()["detail"]
    assert bearer(login(user)["access"]).get(ME).status_code == 200


def admin_change(browser, target, **fields) -> None:
    url = f"/admin/tenancy/user/{target.pk}/change/"
    page = browser.get(url)
    assert page.status_code == 200
    data = {
        f"{inline.formset.prefix}-{name}": "0"
        for inline in page.context["inline_admin_formsets"]
        for name in ("TOTAL_FORMS", "INITIAL_FORMS")
    }
    data.update(
        email=target.email, full_name=target.full_name, tenant=str(target.tenant_id), **fields
    )
    response = browser.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors


@pytest.fixture
def staff_browser(tenant):
    browser = Client()
    browser.force_login(
        UserFactory(tenant=tenant, is_tenant_admin=True, is_staff=True, full_name="Staff Admin")
    )
    return browser


def test_deactivation_in_the_admin_ends_every_session(staff_browser, user):
    tokens = login(user)
    admin_change(staff_browser, user)  # is_active left unchecked: deactivated
    user.refresh_from_db()
    assert not user.is_active
    assert bearer(tokens["access"]).get(ME).status_code == 401
    assert refresh(tokens["refresh"]).status_code == 401
    assert BlacklistedToken.objects.filter(token__user=user).count() == 1
    assert AuditLog.objects.filter(action="user_updated", resource_id=str(user.pk)).exists()


def test_other_admin_edits_do_not_end_sessions(staff_browser, user):
    tokens = login(user)
    admin_change(staff_browser, user, is_active="on")
    assert bearer(tokens["access"]).get(ME).status_code == 200
    assert refresh(tokens["refresh"]).status_code == 200


def test_password_reset_in_the_admin_ends_every_session(staff_browser, user):
    tokens = login(user)
    response = staff_browser.post(
        f"/admin/tenancy/user/{user.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 302
    assert_session_dead(tokens)
    assert bearer(login(user, NEW_PASSWORD)["access"]).get(ME).status_code == 200
    reset = AuditLog.objects.get(action="password_reset")
    assert reset.resource_id == str(user.pk)
    assert reset.actor.full_name == "Staff Admin"


def test_refresh_of_a_deleted_users_token_is_401(user):
    token = str(SessionRefreshToken.for_user(user))
    with rls.bypass("an operator deletes the user"):
        user.delete()
    response = refresh(token)
    assert response.status_code == 401
    assert response.json()["code"] == "no_active_account"


def test_refresh_of_an_inactive_users_token_is_401(user):
    tokens = login(user)
    user.is_active = False
    user.save()
    assert refresh(tokens["refresh"]).status_code == 401


def session_token(user, started_days_ago: float) -> SessionRefreshToken:
    token = SessionRefreshToken.for_user(user)
    token["auth_time"] = datetime_to_epoch(timezone.now() - timedelta(days=started_days_ago))
    return token


def test_refresh_beyond_the_maximum_session_age_is_401(user, settings):
    settings.JWT_MAX_SESSION = timedelta(days=30)
    response = refresh(str(session_token(user, 30.01)))
    assert response.status_code == 401
    assert response.json()["code"] == "session_expired"


def test_rotation_carries_the_session_start_and_caps_the_new_tokens(user, settings):
    settings.JWT_MAX_SESSION = timedelta(days=30)
    old = session_token(user, 29.99)  # about 14 minutes left
    response = refresh(str(old))
    assert response.status_code == 200
    ends = old["auth_time"] + int(timedelta(days=30).total_seconds())
    for kind in ("refresh", "access"):
        rotated = (SessionRefreshToken if kind == "refresh" else RefreshToken.access_token_class)(
            response.json()[kind]
        )
        assert rotated["auth_time"] == old["auth_time"]
        assert rotated["exp"] <= ends


def test_login_starts_a_new_session(user):
    tokens = login(user)
    token = SessionRefreshToken(tokens["refresh"])
    assert abs(token["auth_time"] - datetime_to_epoch(timezone.now())) <= 2
    assert token["auth_epoch"] == 0


@pytest.mark.parametrize("path", [PASSWORD, LOGOUT_ALL])
def test_revocation_endpoints_require_authentication(path, db):
    assert APIClient().post(path, {}).status_code == 401
