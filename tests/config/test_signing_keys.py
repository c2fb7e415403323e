"""Deployment defaults (security round two, finding 9): JWTs are signed with JWT_SIGNING_KEY, not
SECRET_KEY; production refuses to start without it; local runs derive a separate one. The
row-level security key (finding 8) is derived the same way unless given, and differs from both."""

import hashlib
import hmac
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from config import secret_key
from config.secret_key import JWT_KEY_LABEL, RLS_KEY_LABEL, derived_key
from core import rls_key
from tests.factories import UserFactory
from tests.fixtures import session_token

ROOT = Path(__file__).resolve().parents[2]
ME = "/api/auth/me/"


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.mark.django_db
def test_a_token_signed_with_secret_key_is_refused():
    assert settings.SIMPLE_JWT["SIGNING_KEY"] != settings.SECRET_KEY
    access = str(session_token(UserFactory()).access_token)
    assert bearer(access).get(ME).status_code == 200
    claims = jwt.decode(access, options={"verify_signature": False})
    forged = jwt.encode(claims, settings.SECRET_KEY, algorithm="HS256")
    response = bearer(forged).get(ME)
    assert response.status_code == 401
    resigned = jwt.encode(claims, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")
    assert bearer(resigned).get(ME).status_code == 200


def load_settings(key_file: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    """Imports config.settings in a child process with ``env`` (and no JWT_SIGNING_KEY or
    RLS_SIGNING_KEY unless given); prints the secret key, the JWT signing key and the row-level
    security key when the import succeeds.

    ``key_file`` stands in for the checkout's .data/secret_key (``None``: a path with no file),
    so the outcome does not depend on whether `make` ran here."""
    child_env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("JWT_SIGNING_KEY", "RLS_SIGNING_KEY")
    }
    child_env.update(DJANGO_SETTINGS_MODULE="config.settings", **env)
    code = (
        "import pathlib, sys; from config import secret_key; "
        "secret_key.KEY_FILE = pathlib.Path(sys.argv[1]); "
        "from django.conf import settings; "
        "print(settings.SECRET_KEY); print(settings.SIMPLE_JWT['SIGNING_KEY']); "
        "print(settings.RLS_SIGNING_KEY)"
    )
    stand_in = key_file or ROOT / ".data" / "no-such-key-file"
    return subprocess.run(  # noqa: S603 (our own interpreter, fixed arguments)
        [sys.executable, "-c", code, str(stand_in)],
        cwd=ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def printed_keys(result: subprocess.CompletedProcess) -> tuple[str, str]:
    assert result.returncode == 0, result.stderr
    secret, jwt_key, _rls_key = result.stdout.split()
    return secret, jwt_key


def printed_rls_key(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[2]


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
    assert printed_keys(result) == ("a-secret-key", "a-jwt-key")


def secret_key_command(*arguments: str, **env: str) -> str:
    """What ``python -m config.secret_key <arguments>`` prints (as ``make`` runs it)."""
    result = subprocess.run(  # noqa: S603  (our own module, test-chosen flags)
        [sys.executable, "-m", "config.secret_key", *arguments],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def test_debug_derives_a_separate_key_from_secret_key():
    result = load_settings(DEBUG="1", SECRET_KEY="a-local-secret-key")
    _, key = printed_keys(result)
    assert key == derived_key("a-local-secret-key", JWT_KEY_LABEL)
    assert key != "a-local-secret-key"


def test_the_makefile_derivation_matches_the_settings_one():
    printed = secret_key_command("--jwt", SECRET_KEY="a-local-secret-key")
    assert printed == derived_key("a-local-secret-key", JWT_KEY_LABEL)


# --- a checkout's key file (issue 15: README's command lines failed without exported keys) -----


def test_commands_in_a_checkout_use_the_key_file_make_wrote(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text("a-key-make-wrote\n")

    result = load_settings(key_file, DEBUG="0", SECRET_KEY="")

    assert printed_keys(result) == (
        "a-key-make-wrote",
        derived_key("a-key-make-wrote", JWT_KEY_LABEL),
    )


def test_production_without_a_key_file_still_refuses_to_start(tmp_path):
    result = load_settings(tmp_path / "absent", DEBUG="0", SECRET_KEY="")

    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG=0." in result.stderr


def test_a_secret_key_from_the_environment_still_needs_its_own_jwt_key(tmp_path):
    """The key file stands in only for both keys at once: a deployment that sets SECRET_KEY never
    has a JWT key derived behind its back from a file lying around."""
    key_file = tmp_path / "secret_key"
    key_file.write_text("a-key-make-wrote")

    result = load_settings(key_file, DEBUG="0", SECRET_KEY="a-production-secret-key")

    assert result.returncode != 0
    assert "JWT_SIGNING_KEY must be set when DEBUG=0." in result.stderr


def test_the_key_file_is_created_once_whoever_asks_first(tmp_path, monkeypatch):
    """`make -j` or parallel test workers may all find no file: one key wins, nobody reads a
    half-written one, and no draft is left behind."""
    monkeypatch.setattr(secret_key, "KEY_FILE", tmp_path / ".data" / "secret_key")

    start = threading.Barrier(8)

    def first_use() -> str:
        start.wait(timeout=30)
        return secret_key.local_secret_key()

    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = set(pool.map(lambda _: first_use(), range(8)))

    assert keys == {secret_key.stored_secret_key()}
    assert len(keys.pop()) >= 50
    assert (tmp_path / ".data" / "secret_key").stat().st_mode & 0o777 == 0o600
    assert [path.name for path in (tmp_path / ".data").iterdir()] == ["secret_key"]


# --- the row-level security signing key (core.rls_key) ------------------------------------


@pytest.mark.parametrize("same_as", ["SECRET_KEY", "JWT_SIGNING_KEY"])
def test_production_refuses_an_rls_signing_key_equal_to_another_key(same_as):
    keys = {"SECRET_KEY": "a-secret-key", "JWT_SIGNING_KEY": "a-jwt-key"}
    result = load_settings(DEBUG="0", RLS_SIGNING_KEY=keys[same_as], **keys)
    assert result.returncode != 0
    assert "RLS_SIGNING_KEY must differ from SECRET_KEY and JWT_SIGNING_KEY." in result.stderr


def test_the_rls_key_is_derived_from_secret_key_unless_given():
    keys = {"DEBUG": "0", "SECRET_KEY": "a-secret-key", "JWT_SIGNING_KEY": "a-jwt-key"}
    derived = load_settings(**keys)
    assert printed_rls_key(derived) == derived_key("a-secret-key", RLS_KEY_LABEL)
    given = load_settings(RLS_SIGNING_KEY="an-rls-key", **keys)
    assert printed_rls_key(given) == "an-rls-key"


def test_the_printed_rls_key_is_the_one_settings_derive():
    """What operators pin before rotating SECRET_KEY (docs/database-roles.md)."""
    printed = secret_key_command("--rls", SECRET_KEY="a-local-secret-key")
    assert printed == derived_key("a-local-secret-key", RLS_KEY_LABEL)


@pytest.mark.parametrize("key", [b"short", b"k" * 64, b"a-key-longer-than-the-block-" * 4])
def test_the_stored_pads_make_the_same_hmac_as_python(key):
    """What app_current_tenant() computes with two sha256() calls is HMAC-SHA256, any key size."""
    inner, outer = rls_key.pads(key)
    message = b"tenant:nonce"
    by_pads = hashlib.sha256(outer + hashlib.sha256(inner + message).digest()).hexdigest()
    assert by_pads == hmac.new(key, message, hashlib.sha256).hexdigest()
