"""Prints a secret key for local runs: kept in .data/secret_key so sessions survive restarts.

``--ephemeral`` prints a fresh key without storing it (for one-off deploy checks).
``--jwt`` prints the JWT signing key derived from SECRET_KEY (the environment's, else the local
file's) with ``derived_key``, so a local run signs tokens with a key that is not SECRET_KEY.
Production sets SECRET_KEY and JWT_SIGNING_KEY in the environment instead; settings fall back to
an existing key file (``stored_secret_key``), so commands run by hand in a checkout use the same
keys as ``make`` without exporting them. An image or a server without the file gets none.
``--rls`` prints the row-level security signing key settings derive from SECRET_KEY when
RLS_SIGNING_KEY is unset: pin it as RLS_SIGNING_KEY before rotating SECRET_KEY to keep it.
"""

import hashlib
import hmac
import os
import secrets
import sys

from config.database import BASE_DIR

KEY_FILE = BASE_DIR / ".data" / "secret_key"
JWT_KEY_LABEL = "clm.jwt-signing-key.v1"
RLS_KEY_LABEL = "clm.rls-signing-key.v1"


def local_secret_key() -> str:
    """The key file's key, created first if there is none."""
    if not KEY_FILE.exists():
        KEY_FILE.parent.mkdir(exist_ok=True)
        # Written aside, then linked into place: processes starting together (make -j, parallel
        # tests) never read a half-written key, and the first link wins.
        draft = KEY_FILE.with_name(f".{KEY_FILE.name}.{secrets.token_hex(8)}")
        draft.write_text(secrets.token_urlsafe(50))
        draft.chmod(0o600)
        try:
            os.link(draft, KEY_FILE)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return KEY_FILE.read_text().strip()


def stored_secret_key() -> str:
    """The key file's key, or "" when there is no file (never creates one)."""
    return KEY_FILE.read_text().strip() if KEY_FILE.exists() else ""


def derived_key(secret_key: str, label: str) -> str:
    """A key for one purpose (``label``) derived from ``secret_key``: HMAC-SHA256, hex.

    Knowing the derived key does not reveal ``secret_key``, and a token signed with
    ``secret_key`` itself does not verify under it.
    """
    return hmac.new(secret_key.encode(), label.encode(), hashlib.sha256).hexdigest()


if __name__ == "__main__":
    if "--ephemeral" in sys.argv:
        print(secrets.token_urlsafe(50))
    elif "--jwt" in sys.argv:
        print(derived_key(os.environ.get("SECRET_KEY") or local_secret_key(), JWT_KEY_LABEL))
    elif "--rls" in sys.argv:
        print(derived_key(os.environ.get("SECRET_KEY") or local_secret_key(), RLS_KEY_LABEL))
    else:
        print(local_secret_key())
