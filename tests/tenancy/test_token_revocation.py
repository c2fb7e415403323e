"""Sessions (finding 5): refresh of a deleted user's token is a 401; sessions are capped."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import datetime_to_epoch

from tenancy.tokens import SessionRefreshToken
from tests.factories import FACTORY_PASSWORD

pytestmark = pytest.mark.django_db

TOKEN = "/api/auth/token/"
REFRESH = "/api/auth/token/refresh/"
ME = "/api/auth/me/"


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


def test_refresh_of_a_deleted_users_token_is_401(user):
    token = str(RefreshToken.for_user(user))
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
