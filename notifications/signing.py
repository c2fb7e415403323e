"""Webhook secrets and the signatures every delivery carries.

* ``X-Signature: sha256=<hex HMAC-SHA256 of the body>``, keyed with the endpoint's current secret
  as written (its UTF-8 bytes): what receivers built before Standard Webhooks check.
* Standard Webhooks: ``webhook-id`` (the event id, as ``X-Event-Id``), ``webhook-timestamp``
  (Unix seconds of this attempt) and ``webhook-signature: v1,<base64 HMAC-SHA256 of
  "{webhook-id}.{webhook-timestamp}.{body}">``. The signed timestamp is what lets a receiver
  refuse a replayed delivery (the ``standardwebhooks`` package refuses one 5 minutes off). After a
  rotation the previous secret signs too, for ``PREVIOUS_SECRET_TTL``: two space-separated
  ``v1,`` signatures, either of which verifies.

Secrets are ``whsec_`` + base64 of ``SECRET_BYTES`` random bytes, and the Standard Webhooks key is
those bytes. A secret from before this scheme (any string that is not ``whsec_<base64>``) keeps
working unchanged: ``X-Signature`` as before, and its Standard Webhooks key is its UTF-8 bytes, so
a receiver passes ``"whsec_" + base64(old secret)`` to its Standard Webhooks library. Nothing is
converted: the old secret, shown once long ago, is what receivers hold.
"""

import base64
import binascii
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
SECRET_BYTES = 32
SECRET_MIN_BYTES, SECRET_MAX_BYTES = 24, 64
PREVIOUS_SECRET_TTL = timedelta(hours=24)


def secret_generate() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _decoded(secret: str) -> bytes | None:
    """The key bytes of a ``whsec_<base64>`` secret (padding optional); None for anything else."""
    if not secret.startswith(SECRET_PREFIX):
        return None
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def secret_validate(secret: str) -> str:
    """A secret given by a client must be one a Standard Webhooks library accepts."""
    key = _decoded(secret)
    if key is None or not SECRET_MIN_BYTES <= len(key) <= SECRET_MAX_BYTES:
        raise ValidationError(
            f"The secret must be {SECRET_PREFIX} followed by the base64 of "
            f"{SECRET_MIN_BYTES} to {SECRET_MAX_BYTES} random bytes; omit it to have one generated."
        )
    return secret


def standard_key(secret: str) -> bytes:
    """The Standard Webhooks HMAC key: the decoded bytes, or an older secret's UTF-8 bytes."""
    key = _decoded(secret)
    return secret.encode() if key is None else key


def x_signature(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of body>``, the ``X-Signature`` header."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_signature(all_secrets: list[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64>`` per secret, space-separated: the ``webhook-signature`` header."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digests = (hmac.new(standard_key(s), signed, hashlib.sha256).digest() for s in all_secrets)
    return " ".join("v1," + base64.b64encode(digest).decode() for digest in digests)


def signing_secrets(endpoint, now: datetime) -> list[str]:
    """The current secret, then the previous one while it has not expired."""
    previous = endpoint.previous_secret
    expires_at = endpoint.previous_secret_expires_at
    if previous and expires_at is not None and now < expires_at:
        return [endpoint.secret, previous]
    return [endpoint.secret]


def signature_headers(endpoint, webhook_id: str, body: bytes, now: datetime) -> dict[str, str]:
    timestamp = int(now.timestamp())
    return {
        "X-Signature": x_signature(endpoint.secret, body),
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_signature(
            signing_secrets(endpoint, now), webhook_id, timestamp, body
        ),
    }
