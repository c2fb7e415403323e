"""Typed reads of environment variables, so a bad value fails loudly at start-up."""

import os
import re
import string

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


_RATE_PATTERN = re.compile(
    r"(?P<limit>[1-9]\d*)\s*/\s*(?P<count>[1-9]\d*)?\s*"
    r"(?P<unit>s|secs?|seconds?|m|mins?|minutes?|h|hours?|d|days?)"
)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(raw: str | None) -> tuple[int, int] | None:
    """``"30/min"`` or ``"100/10s"`` as ``(limit, period in seconds)``; empty or None: no limit."""
    if raw is None or not raw.strip():
        return None
    match = _RATE_PATTERN.fullmatch(raw.strip().lower())
    if match is None:
        raise ValueError(f"{raw!r} is not a rate such as '30/min', '600/h' or '100/10s'")
    period = int(match["count"] or 1) * _UNIT_SECONDS[match["unit"][0]]
    return int(match["limit"]), period


def env_rate(name: str, default: str) -> str | None:
    """A rate setting (see ``parse_rate``), validated at start-up; empty turns it off (None)."""
    raw = os.environ.get(name, default)
    try:
        return raw.strip() if parse_rate(raw) else None
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from exc


def env_url_template(name: str, placeholders: set[str]) -> str:
    """An http(s) URL with exactly these ``{placeholders}``, or "" when unset.

    Checked here because a bad template would otherwise fail every e-mail it is used in.
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return ""
    try:
        found = {field for _, field, _, _ in string.Formatter().parse(raw) if field is not None}
    except ValueError as exc:  # an unmatched brace
        raise ImproperlyConfigured(f"{name}: {exc}, got {raw!r}") from exc
    expected = ", ".join(f"{{{field}}}" for field in sorted(placeholders))
    if found != placeholders or not raw.startswith(("https://", "http://")):
        raise ImproperlyConfigured(
            f"{name} must be an http(s) URL with exactly the placeholders {expected}, got {raw!r}"
        )
    return raw
