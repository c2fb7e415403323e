"""Prints a secret key for local runs: kept in .data/secret_key so sessions survive restarts.

``--ephemeral`` prints a fresh key without storing it (for one-off deploy checks).
Production sets SECRET_KEY in the environment instead.
"""

import secrets
import sys

from config.database import BASE_DIR

KEY_FILE = BASE_DIR / ".data" / "secret_key"


def local_secret_key() -> str:
    if not KEY_FILE.exists():
        KEY_FILE.parent.mkdir(exist_ok=True)
        KEY_FILE.write_text(secrets.token_urlsafe(50))
        KEY_FILE.chmod(0o600)
    return KEY_FILE.read_text().strip()


if __name__ == "__main__":
    print(secrets.token_urlsafe(50) if "--ephemeral" in sys.argv else local_secret_key())
