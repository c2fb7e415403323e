"""The key that signs row-level security scopes (``core.rls``), and its copy in the database.

``settings.RLS_SIGNING_KEY``: the environment's ``RLS_SIGNING_KEY``, else a key derived from
``SECRET_KEY`` by a labelled HMAC (``config.secret_key``). The database keeps it as the two HMAC
pads (``K xor ipad``, ``K xor opad``) in ``rls_signing_key``, a table of the owner role that no
other role may read, so ``app_current_tenant()`` computes a real HMAC-SHA256 with two ``sha256()``
calls. ``migrate`` (the owner) writes it after every run (``store_after_migrate``), so changing
the key is: set the new one, run ``migrate``, restart (``docs/database-roles.md``).
"""

import hashlib
import hmac

from django.conf import settings

KEY_TABLE = "public.rls_signing_key"
_BLOCK_SIZE = 64  # SHA-256's


def _key() -> bytes:
    return settings.RLS_SIGNING_KEY.encode()


def signature(subject: str, nonce: str) -> str:
    """What ``app_current_tenant()`` expects after ``<subject>.`` on a connection with ``nonce``."""
    return hmac.new(_key(), f"{subject}:{nonce}".encode(), hashlib.sha256).hexdigest()


def pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer padded keys (RFC 2104): a long key is hashed first."""
    if len(key) > _BLOCK_SIZE:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK_SIZE, b"\0")
    return bytes(byte ^ 0x36 for byte in key), bytes(byte ^ 0x5C for byte in key)


def store(connection) -> bool:
    """Write the key into the database, if this connection's role may (the owner); True if so."""
    # Raw SQL: the key's table is the owner's, made by a migration, with no model to read it.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT CASE WHEN to_regclass(%s) IS NULL THEN false"
            " ELSE has_table_privilege(%s, 'INSERT, UPDATE') END",
            [KEY_TABLE, KEY_TABLE],
        )
        if not cursor.fetchone()[0]:
            return False
        inner, outer = pads(_key())
        cursor.execute(
            "INSERT INTO public.rls_signing_key AS stored (id, inner_pad, outer_pad)"
            " VALUES (true, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET inner_pad = EXCLUDED.inner_pad,"
            " outer_pad = EXCLUDED.outer_pad"
            " WHERE (stored.inner_pad, stored.outer_pad)"
            " IS DISTINCT FROM (EXCLUDED.inner_pad, EXCLUDED.outer_pad)",
            [inner, outer],
        )
    return True


def store_after_migrate(sender, using, **kwargs) -> None:
    """``post_migrate``: the owner writes the application's key after every ``migrate``."""
    from django.db import connections

    store(connections[using])
