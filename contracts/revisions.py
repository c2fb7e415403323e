"""The canonical content of a contract and its SHA-256: what a revision is and what it hashes.

Pure functions (no queries). The canonical JSON has every business field, keys sorted at every
level, no insignificant whitespace, UTF-8, money as a string with two places and dates as ISO
8601, so the same content always hashes the same, whichever way the client sent it.
"""

import hashlib
import json
from decimal import Decimal

from contracts.models import BUSINESS_FIELDS, Contract


def canonical_content(contract: Contract) -> dict:
    """The business fields as JSON-safe canonical values."""
    content = {field: getattr(contract, field) for field in BUSINESS_FIELDS}
    value = content["value"]
    content["value"] = f"{Decimal(str(value)):.2f}" if value is not None else None
    for field in ("start_date", "end_date"):
        if hasattr(content[field], "isoformat"):  # a date; a str is already ISO 8601
            content[field] = content[field].isoformat()
    return content


def _canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(content: dict) -> str:
    return hashlib.sha256(_canonical_json(content).encode()).hexdigest()


def changed_fields(before: dict, after: dict) -> list[str]:
    """The business fields whose canonical value differs, in BUSINESS_FIELDS order.

    Compared as canonical JSON, so ``{"a": 1}`` and ``{"a": true}`` differ as their hashes do.
    """
    return [
        field
        for field in BUSINESS_FIELDS
        if _canonical_json(before.get(field)) != _canonical_json(after.get(field))
    ]
