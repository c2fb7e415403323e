"""Deployment defaults (security round two, finding 9): JWTs are signed with JWT_SIGNING_KEY, not
SECRET_KEY; production refuses to start without it; local runs derive a separate one."""

import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from django.conf import settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from config.secret_key import JWT_KEY_LABEL, derived_key
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parent.parent
ME = "/api/auth/me/"


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.mark.django_db
def test_a_token_signed_with_secret_key_is_refused():
    assert settings.SIMPLE_JWT["SIGNING_KEY"] != settings.SECRET_KEY
    access = str(RefreshToken.for_user(UserFactory()).access_token)
    assert bearer(access).get(ME).status_code == 200
    claims = jwt.decode(access, options={"verify_signature": False})
    forged = jwt.encode(claims, settings.SECRET_KEY, algorithm="HS256")
    response = bearer(forged).get(ME)
    assert response.status_code == 401
    resigned = jwt.encode(claims, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")
    assert bearer(resigned).get(ME).status_code == 200


def load_settings(**env: str) -> subprocess.CompletedProcess:
    """Imports config.settings in a child process with ``env`` (and no JWT_SIGNING_KEY unless
    given); prints the JWT signing key when the import succeeds."""
    child_env = {key: value for key, value in os.environ.items() if key != "JWT_SIGNING_KEY"}
    child_env.update(DJANGO_SETTINGS_MODULE="config.settings", **env)
    code = "from django.conf import settings; print(settings.SIMPLE_JWT['SIGNING_KEY'])"
    return subprocess.run(  # noqa: S603 (our own interpreter, fixed arguments)
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_refuses_to_start_without_a_jwt_signing_key():
    result = load_settings(DEBUG="0", SECRET_KEY="a-production-secret-key")
    assert result.returncode != 0
    assert "JWT_SIGNING_KEY must be set when DEBUG=0." in result.stderr


def test_production_refuses_a_jwt_signing_key_equal_to_secret_key():
    result = load_settings(DEBUG="0", SECRET_KEY="same-key", JWT_SIGNING_KEY="same-key")
    assert result.returncode != 0
    assert "JWT_SIGNING_KEY must differ from SECRET_KEY." in result.stderr


def test_production_uses_the_given_jwt_signing_key():
    result = load_settings(DEBUG="0", SECRET_KEY="a-secret-key", JWT_SIGNING_KEY="a-jwt-key")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "a-jwt-key"


def test_debug_derives_a_separate_key_from_secret_key():
    result = load_settings(DEBUG="1", SECRET_KEY="a-local-secret-key")
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert key == derived_key("a-local-secret-key", JWT_KEY_LABEL)
    assert key != "a-local-secret-key"


def test_the_makefile_derivation_matches_the_settings_one():
    env = {**os.environ, "SECRET_KEY": "a-local-secret-key"}
    result = subprocess.run(
        [sys.executable, "-m", "config.secret_key", "--jwt"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == derived_key("a-local-secret-key", JWT_KEY_LABEL)
