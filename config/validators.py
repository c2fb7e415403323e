"""Validation shared by every app's serializers for free-form JSON documents."""

import json
import re

from rest_framework.exceptions import ValidationError

JSON_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_]{1,64}$")
# JSON may carry lone surrogates ("\ud800"); they are not UTF-8, so PostgreSQL refuses them.
SURROGATE_PATTERN = re.compile("[\ud800-\udfff]")


def _walk(value, depth: int, max_depth: int) -> None:
    if depth > max_depth:
        raise ValidationError(f"Nested deeper than {max_depth} levels.")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValidationError("Strings may not contain NUL characters.")
        if SURROGATE_PATTERN.search(value):
            raise ValidationError("Strings may not contain unpaired surrogate characters.")
    elif isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                raise ValidationError("Keys may not contain NUL characters.")
            if SURROGATE_PATTERN.search(key):
                raise ValidationError("Keys may not contain unpaired surrogate characters.")
            _walk(item, depth + 1, max_depth)
    elif isinstance(value, list):
        for item in value:
            _walk(item, depth + 1, max_depth)
    elif isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise ValidationError("NaN and Infinity are not valid JSON numbers.")
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**15:
        # PostgreSQL's jsonb keeps big numbers exactly, but most JSON readers do not.
        raise ValidationError("Numbers must be smaller than 10^15 in absolute value.")


def validate_json_object(
    value, *, max_bytes: int = 16_384, max_depth: int = 5, max_keys: int = 100
) -> dict:
    """An object with identifier-like keys, bounded in size and depth, storable by PostgreSQL."""
    if not isinstance(value, dict):
        raise ValidationError("Must be a JSON object.")
    if len(value) > max_keys:
        raise ValidationError(f"At most {max_keys} keys are allowed.")
    bad_keys = [key for key in value if not JSON_KEY_PATTERN.fullmatch(key)]
    if bad_keys:
        raise ValidationError(
            f"Keys must be 1-64 letters, digits or underscores; invalid: {bad_keys[0][:80]!r}."
        )
    _walk(value, 1, max_depth)
    if len(json.dumps(value)) > max_bytes:
        raise ValidationError(f"Must be at most {max_bytes} bytes when serialized.")
    return value
