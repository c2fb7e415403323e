"""Trigger-rule engine for workflow definitions.

A definition's ``trigger_conditions`` is untrusted JSON saying which contracts it applies to.
This module validates it against a fixed allow-list (never passing user keys to the ORM, see
CVE-2025-64459), normalizes it into a small typed tree, and compiles that tree two ways with the
same semantics: a Python predicate for the match engine and a ``Q`` for database dry-runs.

Rule language
-------------
An object of ``<field>__<lookup>: value`` entries, all of which must hold; ``{}`` matches every
contract. An object may also hold ``"any": [obj, ...]``, ``"all": [obj, ...]`` and
``"not": obj``. ``contract_value`` is an alias of ``value``; a bare field means ``exact``.

Semantics decisions (the Python predicate and the SQL agree on all of them):

* Nulls: a condition on a null ``value``/``start_date``/``end_date`` (or a missing/null metadata
  key) is false, except ``isnull``. Every compiled condition is two-valued in SQL as well
  (explicit ``IS NOT NULL`` guards, ``CASE ... ELSE false``), so ``not`` is plain boolean
  negation in both and never hides or adds null rows.
* Strings: ``lt/lte/gt/gte/range`` compare by code point (Python ``str`` order; SQL uses
  ``COLLATE "C"``). ``contains``/``startswith`` treat ``%``, ``_`` and ``\\`` literally.
  Case-insensitive lookups upper-case both sides (PostgreSQL ``UPPER()``, Python
  ``str.upper()``); the two agree for ASCII, but may differ for letters whose upper-case form is
  locale dependent or longer (``ß`` -> ``SS``), so only ASCII case folding is guaranteed.
* Money (``value``): JSON numbers or decimal strings (``"1500.50"``), never booleans, finite,
  ``abs < 10**16`` and at most 2 decimal places (the ``numeric(18,2)`` column), normalized to a
  ``Decimal`` with 2 places.
* Dates: ISO ``YYYY-MM-DD`` strings only.
* ``metadata__<key>``: ``<key>`` starts with an ASCII letter and holds ASCII letters, digits and
  single inner underscores (so ``__`` always separates the lookup; nested paths such as
  ``metadata__a__b`` are rejected; purely numeric keys would become JSON array indexes in SQL).
  Conditions are type-aware: a string rule value only matches a JSON string, a number only a
  JSON number (compared numerically, ``1 == 1.0``), a boolean (``exact`` only) only a JSON
  boolean. ``iexact/contains/icontains/startswith/istartswith`` need strings; ``lt/lte/gt/gte``
  a string or a number; ``in``/``range`` lists of all strings or all numbers. ``isnull: true``
  matches a missing key or JSON null. ``exact: null`` is rejected (use ``isnull``).
* Limits: at most 50 conditions, nesting of ``any``/``all``/``not`` at most 5 deep, at most 500
  ``in``/``range`` items in total over the whole rule, strings at most 1000 characters without
  NUL bytes or lone surrogates. Objects inside ``any``/``all``/``not`` must not be empty, and a
  condition may not appear twice in one object (``value`` and ``contract_value__exact``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import reduce
from operator import and_, attrgetter, or_
from types import MappingProxyType
from typing import Any, Union

from django.db.models import (
    BooleanField,
    Case,
    CharField,
    DateField,
    DecimalField,
    ExpressionWrapper,
    F,
    Func,
    Q,
    Value,
    When,
)
from django.db.models import lookups as dj_lookups
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Coalesce, Collate

__all__ = [
    "ALLOWED_FIELDS",
    "ALLOWED_LOOKUPS",
    "FIELD_ALIASES",
    "LOOKUPS_BY_FIELD",
    "MAX_CONDITIONS",
    "MAX_DEPTH",
    "MAX_LIST_ITEMS",
    "MAX_STRING_LENGTH",
    "AllOf",
    "AnyOf",
    "Condition",
    "Not",
    "Rule",
    "RuleValidationError",
    "compile_predicate",
    "compile_q",
    "dump_rules",
    "parse_rules",
    "validate_rules",
]

MAX_CONDITIONS = 50
MAX_DEPTH = 5
MAX_LIST_ITEMS = 500
MAX_STRING_LENGTH = 1000
MAX_ABS_NUMBER = Decimal(10) ** 16
MAX_KEY_LENGTH = 200
MAX_METADATA_KEY_LENGTH = 64

_MONEY, _DATE, _STRING, _BOOL, _JSON = "money", "date", "string", "boolean", "json"
_METADATA_PREFIX = "metadata__"

_COLUMN_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "value": _MONEY,
        "contract_type": _STRING,
        "currency": _STRING,
        "counterparty": _STRING,
        "department": _STRING,
        "region": _STRING,
        "title": _STRING,
        "start_date": _DATE,
        "end_date": _DATE,
        "has_blocking_findings": _BOOL,
    }
)
FIELD_ALIASES: Mapping[str, str] = MappingProxyType({"contract_value": "value"})

_ORDERING = ("lt", "lte", "gt", "gte")
_PATTERNS = ("contains", "icontains", "startswith", "istartswith")
_KIND_LOOKUPS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        _MONEY: ("exact", *_ORDERING, "in", "range", "isnull"),
        _DATE: ("exact", *_ORDERING, "in", "range", "isnull"),
        _STRING: ("exact", "iexact", *_ORDERING, "in", "range", *_PATTERNS, "isnull"),
        _BOOL: ("exact", "isnull"),
        _JSON: ("exact", "iexact", *_ORDERING, "in", "range", *_PATTERNS, "isnull"),
    }
)
# For help texts: the contract columns (``metadata__<key>`` comes on top) and every lookup.
ALLOWED_FIELDS: tuple[str, ...] = tuple(_COLUMN_KINDS)
ALLOWED_LOOKUPS: tuple[str, ...] = _KIND_LOOKUPS[_STRING]
# Which lookups each field accepts (``metadata__<key>`` stands for any metadata key).
LOOKUPS_BY_FIELD: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        **{field: _KIND_LOOKUPS[kind] for field, kind in _COLUMN_KINDS.items()},
        "metadata__<key>": _KIND_LOOKUPS[_JSON],
    }
)
_OPERATORS = ("any", "all", "not")

_METADATA_KEY_RE = re.compile(r"[A-Za-z](?:_?[A-Za-z0-9])*")
_DECIMAL_RE = re.compile(r"-?[0-9]{1,40}(?:\.[0-9]{1,40})?")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CENT = Decimal("0.01")
_MISSING = object()


class RuleValidationError(ValueError):
    """A rule is malformed or unsafe; ``path`` names the offending key (``any[1].value__gte``)."""

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{path or '<root>'}: {message}")


@dataclass(frozen=True)
class Condition:
    """One ``field__lookup: value`` test; ``field`` is canonical (alias resolved)."""

    field: str
    lookup: str
    value: object


@dataclass(frozen=True)
class AllOf:
    """Every child holds; an empty ``AllOf`` (the rule ``{}``) is always true."""

    children: tuple[Rule, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one child holds; an empty ``AnyOf`` is always false."""

    children: tuple[Rule, ...]


@dataclass(frozen=True)
class Not:
    """Plain boolean negation of ``child``."""

    child: Rule


Rule = Union[Condition, AllOf, AnyOf, Not]  # noqa: UP007 - a runtime alias, kept for py311


# --- parsing -------------------------------------------------------------------------------


def parse_rules(data: object) -> Rule:
    """Validate untrusted rule JSON and return its normalized tree (an ``AllOf`` for the root)."""
    if not isinstance(data, dict):
        raise RuleValidationError("", f"rules must be a JSON object, not {_type_name(data)}")
    return _Parser().parse_object(data, "", 0)


def validate_rules(data: object) -> None:
    """Raise ``RuleValidationError`` if ``data`` is not a valid rule."""
    parse_rules(data)


def _type_name(value: object) -> str:
    return {
        type(None): "null",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _join(path: str, key: str) -> str:
    shown = key if len(key) <= 100 else key[:100] + "..."
    return f"{path}.{shown}" if path else shown


class _Parser:
    """Walks one rule, keeping the whole-rule budgets so huge inputs fail fast."""

    def __init__(self) -> None:
        self.conditions = 0
        self.list_items = 0

    def parse_object(self, data: dict, path: str, depth: int) -> AllOf:
        if not data and depth:
            raise RuleValidationError(path, "an empty object is only allowed as the whole rule")
        children: list[Rule] = []
        seen: set[tuple[str, str]] = set()
        for key, value in data.items():
            if not isinstance(key, str):
                raise RuleValidationError(_join(path, repr(key)), "keys must be strings")
            key_path = _join(path, key)
            if key in _OPERATORS:
                children.append(self.parse_operator(key, value, key_path, depth + 1))
                continue
            condition = self.parse_condition(key, value, key_path)
            if (condition.field, condition.lookup) in seen:
                raise RuleValidationError(
                    key_path, "the same condition appears twice in one object"
                )
            seen.add((condition.field, condition.lookup))
            children.append(condition)
        return AllOf(tuple(children))

    def parse_operator(self, key: str, value: object, path: str, depth: int) -> Rule:
        if depth > MAX_DEPTH:
            raise RuleValidationError(path, f"rules may nest at most {MAX_DEPTH} levels deep")
        if key == "not":
            if not isinstance(value, dict):
                raise RuleValidationError(path, f"'not' needs an object, not {_type_name(value)}")
            return Not(self.parse_object(value, path, depth))
        if not isinstance(value, list) or not value:
            raise RuleValidationError(path, f"'{key}' needs a non-empty list of objects")
        children = []
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            if not isinstance(item, dict):
                raise RuleValidationError(item_path, f"expected an object, not {_type_name(item)}")
            children.append(self.parse_object(item, item_path, depth))
        return (AnyOf if key == "any" else AllOf)(tuple(children))

    def parse_condition(self, key: str, value: object, path: str) -> Condition:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise RuleValidationError(path, f"rules may have at most {MAX_CONDITIONS} conditions")
        field, kind, lookup = _split_key(key, path)
        if lookup == "isnull":
            if not isinstance(value, bool):
                raise RuleValidationError(path, "isnull needs true or false")
            return Condition(field, lookup, value)
        if lookup in ("in", "range"):
            items = self.take_list(value, lookup, path)
            if kind == _JSON:
                return Condition(field, lookup, _metadata_items(items, path))
            return Condition(field, lookup, tuple(_scalar(kind, lookup, v, path) for v in items))
        if kind == _JSON:
            return Condition(field, lookup, _metadata_scalar(lookup, value, path))
        return Condition(field, lookup, _scalar(kind, lookup, value, path))

    def take_list(self, value: object, lookup: str, path: str) -> list:
        if not isinstance(value, (list, tuple)):
            raise RuleValidationError(path, f"{lookup} needs a list, not {_type_name(value)}")
        if lookup == "range" and len(value) != 2:
            raise RuleValidationError(path, "range needs a list of exactly 2 items [low, high]")
        if not value:
            raise RuleValidationError(path, "in needs a non-empty list")
        self.list_items += len(value)
        if self.list_items > MAX_LIST_ITEMS:
            raise RuleValidationError(
                path, f"rules may have at most {MAX_LIST_ITEMS} list items in total"
            )
        return list(value)


def _split_key(key: str, path: str) -> tuple[str, str, str]:
    """Resolve ``key`` to (canonical field, kind, lookup) using only the allow-lists."""
    if key.startswith("_"):
        raise RuleValidationError(path, "keys may not start with '_'")
    if len(key) > MAX_KEY_LENGTH:
        raise RuleValidationError(path, "key is too long")
    head, *rest = key.split("__")
    if head == "metadata":
        if not rest:
            raise RuleValidationError(path, "use metadata__<key> to test a metadata key")
        name, *rest = rest
        if len(name) > MAX_METADATA_KEY_LENGTH or not _METADATA_KEY_RE.fullmatch(name):
            raise RuleValidationError(
                path,
                "metadata keys must start with a letter and hold only ASCII letters, digits "
                f"and single underscores (at most {MAX_METADATA_KEY_LENGTH} characters)",
            )
        field, kind = _METADATA_PREFIX + name, _JSON
    else:
        field = FIELD_ALIASES.get(head, head)
        if field not in _COLUMN_KINDS:
            raise RuleValidationError(path, f"unknown field {head!r}")
        kind = _COLUMN_KINDS[field]
    if len(rest) > 1:
        raise RuleValidationError(path, "related fields and nested paths are not supported")
    lookup = rest[0] if rest else "exact"
    if lookup not in _KIND_LOOKUPS[kind]:
        nested = " (nested metadata paths are not supported)" if kind == _JSON else ""
        raise RuleValidationError(
            path,
            f"lookup {lookup!r} is not allowed on {field}{nested}; allowed: "
            + ", ".join(_KIND_LOOKUPS[kind]),
        )
    return field, kind, lookup


def _scalar(kind: str, lookup: str, value: object, path: str) -> object:
    if kind == _MONEY:
        return _money(value, path)
    if kind == _DATE:
        return _date(value, path)
    if kind == _STRING:
        return _string(value, lookup, path)
    if not isinstance(value, bool):
        raise RuleValidationError(path, f"{lookup} needs true or false")
    return value


def _money(value: object, path: str) -> Decimal:
    if isinstance(value, bool):
        raise RuleValidationError(path, "expected a number, not a boolean")
    if isinstance(value, int):
        if abs(value) >= MAX_ABS_NUMBER:
            raise RuleValidationError(path, "number is out of range")
        number = Decimal(value)
    elif isinstance(value, float):
        number = _float_decimal(value, path)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise RuleValidationError(path, "number must be finite")
        number = value
    elif isinstance(value, str):
        if not _DECIMAL_RE.fullmatch(value):
            raise RuleValidationError(path, "expected a number or a decimal string like '1500.50'")
        number = Decimal(value)
    else:
        raise RuleValidationError(path, f"expected a number, not {_type_name(value)}")
    if abs(number) >= MAX_ABS_NUMBER:
        raise RuleValidationError(path, "number is out of range (must be below 10**16)")
    if number != number.quantize(_CENT):
        raise RuleValidationError(path, "amounts may have at most 2 decimal places")
    return number.quantize(_CENT)


def _float_decimal(value: float, path: str) -> Decimal:
    """``repr`` is what JSON carried, so 0.1 means Decimal('0.1'), not the binary float."""
    if not math.isfinite(value):
        raise RuleValidationError(path, "number must be finite")
    return Decimal(repr(value))


def _date(value: object, path: str) -> date:
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        raise RuleValidationError(path, "expected an ISO date string 'YYYY-MM-DD'")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RuleValidationError(path, f"{value!r} is not a valid date") from None


def _string(value: object, lookup: str, path: str) -> str:
    if not isinstance(value, str):
        raise RuleValidationError(path, f"{lookup} needs a string, not {_type_name(value)}")
    if len(value) > MAX_STRING_LENGTH:
        raise RuleValidationError(path, f"strings may be at most {MAX_STRING_LENGTH} characters")
    if "\x00" in value:
        raise RuleValidationError(path, "strings may not contain NUL bytes")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RuleValidationError(path, "strings must be valid Unicode") from None
    return value


def _json_number(value: object, path: str) -> Decimal:
    if isinstance(value, int):
        if abs(value) >= MAX_ABS_NUMBER:
            raise RuleValidationError(path, "number is out of range (must be below 10**16)")
        return Decimal(value)
    number = _float_decimal(value, path) if isinstance(value, float) else value
    if not isinstance(number, Decimal) or not number.is_finite():
        raise RuleValidationError(path, "number must be finite")
    if abs(number) >= MAX_ABS_NUMBER:
        raise RuleValidationError(path, "number is out of range (must be below 10**16)")
    return number


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _metadata_scalar(lookup: str, value: object, path: str) -> object:
    if isinstance(value, str):
        return _string(value, lookup, path)
    if lookup == "exact" and isinstance(value, bool):
        return value
    if lookup in ("exact", *_ORDERING) and _is_number(value):
        return _json_number(value, path)
    if value is None and lookup == "exact":
        raise RuleValidationError(path, "use isnull to test for a missing or null metadata key")
    expected = {"exact": "a string, number or boolean"}.get(
        lookup, "a string or number" if lookup in _ORDERING else "a string"
    )
    raise RuleValidationError(path, f"{lookup} needs {expected}, not {_type_name(value)}")


def _metadata_items(items: list, path: str) -> tuple:
    if all(isinstance(item, str) for item in items):
        return tuple(_string(item, "in", path) for item in items)
    if all(_is_number(item) for item in items):
        return tuple(_json_number(item, path) for item in items)
    raise RuleValidationError(path, "list items must be all strings or all numbers")


# --- serialization -------------------------------------------------------------------------


def dump_rules(rule: Rule) -> dict:
    """Canonical JSON for a rule tree; ``parse_rules(dump_rules(r)) == r`` for parsed rules."""
    return _dump_object(rule)


def _dump_object(node: Rule) -> dict:
    children = node.children if isinstance(node, AllOf) else (node,)
    entries = [_dump_entry(child) for child in children]
    keys = [key for key, _ in entries]
    if len(set(keys)) == len(keys):
        return dict(entries)
    return {"all": [{key: value} for key, value in entries]}


def _dump_entry(node: Rule) -> tuple[str, object]:
    if isinstance(node, Condition):
        return f"{node.field}__{node.lookup}", _dump_value(node)
    if isinstance(node, Not):
        return "not", _dump_object(node.child)
    key = "any" if isinstance(node, AnyOf) else "all"
    return key, [_dump_object(child) for child in node.children]


def _dump_value(condition: Condition) -> object:
    def one(value: object) -> object:
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, Decimal):
            if condition.field.startswith(_METADATA_PREFIX):
                return int(value) if value == value.to_integral_value() else float(value)
            return str(value)
        return value

    if isinstance(condition.value, tuple):
        return [one(item) for item in condition.value]
    return one(condition.value)


# --- Python predicate ----------------------------------------------------------------------


def compile_predicate(rule: Rule) -> Callable[[Any], bool]:
    """Build, once, a fast closure testing a contract (any object with the contract fields)."""
    if isinstance(rule, Condition):
        return _condition_predicate(rule)
    if isinstance(rule, Not):
        inner = compile_predicate(rule.child)
        return lambda facts: not inner(facts)
    parts = tuple(compile_predicate(child) for child in rule.children)
    if len(parts) == 1:
        return parts[0]
    if isinstance(rule, AnyOf):
        return lambda facts: any(part(facts) for part in parts)
    return lambda facts: all(part(facts) for part in parts)


def _condition_predicate(condition: Condition) -> Callable[[Any], bool]:
    if condition.field.startswith(_METADATA_PREFIX):
        get = _metadata_getter(condition)
    else:
        get = _column_getter(condition.field)
    if condition.lookup == "isnull":
        want_null = condition.value
        return lambda facts: (get(facts) is None) is want_null
    test = _value_test(condition.lookup, condition.value)

    def predicate(facts: Any) -> bool:
        current = get(facts)
        return current is not None and test(current)

    return predicate


def _column_getter(field: str) -> Callable[[Any], Any]:
    attr = attrgetter(field)
    coerce = {_MONEY: _as_decimal, _DATE: _as_date}.get(_COLUMN_KINDS[field])
    if coerce is None:
        return attr
    return lambda facts: coerce(attr(facts))


def _as_decimal(value: Any) -> Any:
    """Tolerate unsaved model instances holding a float or a string instead of a Decimal."""
    if value is None or isinstance(value, (Decimal, int)):
        return value
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return number if number.is_finite() else None


def _as_date(value: Any) -> Any:
    """Tolerate unsaved model instances holding an ISO string or a datetime."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return value


def _metadata_getter(condition: Condition) -> Callable[[Any], Any]:
    """Return the stored JSON value when its type fits the rule value, else None (no match)."""
    key = condition.field[len(_METADATA_PREFIX) :]
    sample = condition.value[0] if isinstance(condition.value, tuple) else condition.value

    def raw(facts: Any) -> Any:
        metadata = getattr(facts, "metadata", None)
        return metadata.get(key) if isinstance(metadata, dict) else None

    if condition.lookup == "isnull":
        return raw
    if isinstance(sample, bool):
        return lambda facts: v if isinstance(v := raw(facts), bool) else None
    if isinstance(sample, str):
        return lambda facts: v if isinstance(v := raw(facts), str) else None

    def number(facts: Any) -> Decimal | None:
        value = raw(facts)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if isinstance(value, float):
            return Decimal(repr(value)) if math.isfinite(value) else None
        return Decimal(value)

    return number


def _value_test(lookup: str, expected: Any) -> Callable[[Any], bool]:
    """Test for a non-null current value of the right type."""
    if lookup == "exact":
        return lambda v: v == expected
    if lookup == "in":
        choices = frozenset(expected)
        return lambda v: v in choices
    if lookup == "range":
        low, high = expected
        return lambda v: low <= v <= high
    if lookup == "lt":
        return lambda v: v < expected
    if lookup == "lte":
        return lambda v: v <= expected
    if lookup == "gt":
        return lambda v: v > expected
    if lookup == "gte":
        return lambda v: v >= expected
    if lookup == "contains":
        return lambda v: expected in v
    if lookup == "startswith":
        return lambda v: v.startswith(expected)
    upper = expected.upper()
    if lookup == "iexact":
        return lambda v: v.upper() == upper
    if lookup == "icontains":
        return lambda v: upper in v.upper()
    return lambda v: v.upper().startswith(upper)  # istartswith


# --- Django Q ------------------------------------------------------------------------------

_LOOKUP_CLASSES = {
    "exact": dj_lookups.Exact,
    "iexact": dj_lookups.IExact,
    "lt": dj_lookups.LessThan,
    "lte": dj_lookups.LessThanOrEqual,
    "gt": dj_lookups.GreaterThan,
    "gte": dj_lookups.GreaterThanOrEqual,
    "in": dj_lookups.In,
    "range": dj_lookups.Range,
    "contains": dj_lookups.Contains,
    "icontains": dj_lookups.IContains,
    "startswith": dj_lookups.StartsWith,
    "istartswith": dj_lookups.IStartsWith,
}
# Fixed ORM paths on contracts.models.Contract; user keys never reach the ORM.
_COLUMN_FIELDS = {
    _MONEY: lambda: DecimalField(max_digits=18, decimal_places=2),
    _DATE: DateField,
    _STRING: CharField,
    _BOOL: BooleanField,
}


def compile_q(rule: Rule) -> Q:
    """Build a ``Q`` over ``Contract`` with exactly the predicate's (two-valued) semantics."""
    if isinstance(rule, Condition):
        if rule.field.startswith(_METADATA_PREFIX):
            return _metadata_q(rule)
        return _column_q(rule)
    if isinstance(rule, Not):
        return ~compile_q(rule.child)
    parts = [compile_q(child) for child in rule.children]
    if isinstance(rule, AnyOf):
        return reduce(or_, parts) if parts else Q(Value(False))
    return reduce(and_, parts) if parts else Q(Value(True))


def _lookup(lookup: str, lhs: Any, value: Any) -> Any:
    """Lookup on a typed expression, so Django prepares (and LIKE-escapes) the plain value."""
    if lookup in ("in", "range"):
        value = list(value)
    return _LOOKUP_CLASSES[lookup](lhs, value)


def _column_q(condition: Condition) -> Q:
    kind = _COLUMN_KINDS[condition.field]
    column = ExpressionWrapper(F(condition.field), output_field=_COLUMN_FIELDS[kind]())
    if condition.lookup == "isnull":
        return Q(dj_lookups.IsNull(column, condition.value))
    lhs = column
    if kind == _STRING and condition.lookup in (*_ORDERING, "range"):
        lhs = Collate(column, "C")
    test = Q(_lookup(condition.lookup, lhs, condition.value))
    if kind in (_MONEY, _DATE):
        # Makes the condition false (not NULL) on null columns, so NOT stays plain negation.
        return Q(dj_lookups.IsNull(column, False)) & test
    return test


def _metadata_q(condition: Condition) -> Q:
    key = condition.field[len(_METADATA_PREFIX) :]
    json_type = Func(
        KeyTransform(key, "metadata"), function="jsonb_typeof", output_field=CharField()
    )
    if condition.lookup == "isnull":
        is_null = Q(dj_lookups.Exact(Coalesce(json_type, Value("null")), "null"))
        return is_null if condition.value else ~is_null
    text = KeyTextTransform(key, "metadata")
    sample = condition.value[0] if isinstance(condition.value, tuple) else condition.value
    if isinstance(sample, bool):
        wanted_type, lhs, value = "boolean", text, "true" if sample else "false"
    elif isinstance(sample, str):
        wanted_type, value = "string", condition.value
        ordered = condition.lookup in (*_ORDERING, "range")
        lhs = Collate(text, "C") if ordered else text
    else:
        wanted_type, value = "number", condition.value
        lhs = Func(text, template="(%(expressions)s)::numeric", output_field=DecimalField())
    # CASE evaluates the cast only for JSON numbers and yields false (never NULL) otherwise.
    return Q(
        Case(
            When(
                dj_lookups.Exact(json_type, wanted_type), then=_lookup(condition.lookup, lhs, value)
            ),
            default=Value(False),
            output_field=BooleanField(),
        )
    )
