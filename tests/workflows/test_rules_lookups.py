"""The trigger-rule engine's predicate: every lookup per field type, metadata, nulls, nesting."""

from datetime import date
from decimal import Decimal

import pytest

from tests.fixtures import Facts
from workflows.rules import (
    compile_predicate,
    parse_rules,
)


def matches(rule: dict, facts: Facts) -> bool:
    return compile_predicate(parse_rules(rule))(facts)


# --- every lookup per field type ---------------------------------------------------------------


D = Decimal


LOOKUP_TABLE = [
    # money
    ("value", 1000, D("1000.00"), True),
    ("value", 1000, D("1000.01"), False),
    ("value__lt", 1000, D("999.99"), True),
    ("value__lt", 1000, D("1000"), False),
    ("value__lte", 1000, D("1000"), True),
    ("value__gt", "999.99", D("1000"), True),
    ("value__gt", 1000, D("1000"), False),
    ("value__gte", 1000, D("1000"), True),
    ("value__gte", 1000, D("999.99"), False),
    ("value__in", [1, 1000], D("1000.00"), True),
    ("value__in", [1, 2], D("1000.00"), False),
    ("value__range", [1000, 2000], D("2000"), True),
    ("value__range", [1000, 2000], D("2000.01"), False),
    ("value__range", [2000, 1000], D("1500"), False),
    ("value__isnull", False, D("0"), True),
    ("value__isnull", True, D("0"), False),
    # dates
    ("start_date", "2025-01-01", date(2025, 1, 1), True),
    ("start_date__lt", "2025-01-01", date(2024, 12, 31), True),
    ("start_date__lt", "2025-01-01", date(2025, 1, 1), False),
    ("start_date__lte", "2025-01-01", date(2025, 1, 1), True),
    ("start_date__gt", "2025-01-01", date(2025, 1, 2), True),
    ("start_date__gte", "2025-01-02", date(2025, 1, 1), False),
    ("start_date__in", ["2025-01-01", "2026-01-01"], date(2026, 1, 1), True),
    ("start_date__range", ["2025-01-01", "2025-01-31"], date(2025, 1, 31), True),
    ("start_date__range", ["2025-01-01", "2025-01-31"], date(2025, 2, 1), False),
    ("start_date__isnull", False, date(2025, 1, 1), True),
    # strings
    ("title", "Abc", "Abc", True),
    ("title", "Abc", "abc", False),
    ("title__iexact", "aBC", "Abc", True),
    ("title__contains", "b", "Abc", True),
    ("title__contains", "B", "Abc", False),
    ("title__icontains", "B", "Abc", True),
    ("title__startswith", "Ab", "Abc", True),
    ("title__startswith", "ab", "Abc", False),
    ("title__istartswith", "aB", "Abc", True),
    ("title__istartswith", "bc", "Abc", False),
    ("title__contains", "%", "Abc", False),
    ("title__contains", "%", "10% off", True),
    ("title__startswith", "_", "Abc", False),
    ("title__lt", "a", "Z", True),  # code point order: "Z" < "a"
    ("title__lte", "Abc", "Abc", True),
    ("title__gt", "Abc", "Abd", True),
    ("title__gte", "b", "a", False),
    ("title__range", ["A", "B"], "Abc", True),
    ("title__in", ["x", "Abc"], "Abc", True),
    ("title__in", ["abc"], "Abc", False),
    ("title__isnull", True, "", False),
    ("title", "", "", True),
    ("title__contains", "", "anything", True),
    # booleans
    ("has_blocking_findings", True, True, True),
    ("has_blocking_findings", False, True, False),
    ("has_blocking_findings__isnull", False, False, True),
]


@pytest.mark.parametrize(("key", "rule_value", "current", "expected"), LOOKUP_TABLE)
def test_lookup_truth_table(key, rule_value, current, expected):
    field_name = key.split("__")[0]
    assert matches({key: rule_value}, Facts(**{field_name: current})) is expected


METADATA_TABLE = [
    # (rule, metadata, expected)
    ({"metadata__k": "v"}, {"k": "v"}, True),
    ({"metadata__k": "v"}, {"k": "V"}, False),
    ({"metadata__k": 1}, {"k": 1.0}, True),
    ({"metadata__k": 1}, {"k": "1"}, False),
    ({"metadata__k": 1}, {"k": True}, False),
    ({"metadata__k": True}, {"k": True}, True),
    ({"metadata__k": True}, {"k": 1}, False),
    ({"metadata__k": False}, {"k": False}, True),
    ({"metadata__k": False}, {}, False),
    ({"metadata__k": "v"}, {"k": ["v"]}, False),
    ({"metadata__k__iexact": "v"}, {"k": "V"}, True),
    ({"metadata__k__contains": "%"}, {"k": "5%"}, True),
    ({"metadata__k__icontains": "X"}, {"k": "axb"}, True),
    ({"metadata__k__startswith": "a"}, {"k": "ab"}, True),
    ({"metadata__k__istartswith": "A"}, {"k": "ab"}, True),
    ({"metadata__k__gt": 1}, {"k": 2}, True),
    ({"metadata__k__gt": 1}, {"k": "2"}, False),
    ({"metadata__k__gt": 0.1}, {"k": 0.1}, False),  # JSON 0.1 is decimal 0.1, not the float
    ({"metadata__k__gte": 0.1}, {"k": 0.1}, True),
    ({"metadata__k__lt": "b"}, {"k": "a"}, True),
    ({"metadata__k__lt": "b"}, {"k": 1}, False),
    ({"metadata__k__lte": 3}, {"k": 3}, True),
    ({"metadata__k__in": ["a", "b"]}, {"k": "b"}, True),
    ({"metadata__k__in": [1, 2]}, {"k": 2.0}, True),
    ({"metadata__k__in": [1, 2]}, {"k": "1"}, False),
    ({"metadata__k__range": [1, 2]}, {"k": 1.5}, True),
    ({"metadata__k__range": ["2025-01-01", "2025-12-31"]}, {"k": "2025-06-30"}, True),
    ({"metadata__k__isnull": True}, {}, True),
    ({"metadata__k__isnull": True}, {"k": None}, True),
    ({"metadata__k__isnull": True}, {"k": 0}, False),
    ({"metadata__k__isnull": False}, {"k": ""}, True),
    ({"metadata__k__isnull": False}, {"k": None}, False),
    ({"not": {"metadata__k": "v"}}, {}, True),
    ({"not": {"metadata__k__gt": 1}}, {"k": "x"}, True),
]


@pytest.mark.parametrize(("rule", "metadata", "expected"), METADATA_TABLE)
def test_metadata_truth_table(rule, metadata, expected):
    assert matches(rule, Facts(metadata=metadata)) is expected


def test_metadata_that_is_not_an_object_counts_as_missing():
    assert matches({"metadata__k__isnull": True}, Facts(metadata=["k"]))
    assert not matches({"metadata__k": "v"}, Facts(metadata=None))


NULLABLE_CONDITIONS = [
    {"value": 0},
    {"value__lt": 10},
    {"value__lte": 10},
    {"value__gt": -10},
    {"value__gte": -10},
    {"value__in": [0]},
    {"value__range": [-10, 10]},
    {"start_date": "2025-01-01"},
    {"start_date__lt": "2999-01-01"},
    {"start_date__gt": "1900-01-01"},
    {"start_date__in": ["2025-01-01"]},
    {"start_date__range": ["1900-01-01", "2999-01-01"]},
    {"metadata__k": 0},
    {"metadata__k__lt": 10},
    {"metadata__k__contains": ""},
]


@pytest.mark.parametrize("rule", NULLABLE_CONDITIONS)
def test_conditions_on_null_are_false_and_not_negates_them(rule):
    nulls = Facts(value=None, start_date=None, end_date=None, metadata={"k": None})
    assert matches(rule, nulls) is False
    assert matches({"not": rule}, nulls) is True
    assert matches({"not": {"not": rule}}, nulls) is False


def test_isnull_on_null_values():
    nulls = Facts(value=None, end_date=None)
    assert matches({"value__isnull": True, "end_date__isnull": True}, nulls)
    assert not matches({"value__isnull": False}, nulls)
    assert matches({"not": {"value__isnull": False}}, nulls)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"any": [{"currency": "EUR"}, {"region": "EMEA"}]}, True),
        ({"any": [{"currency": "EUR"}, {"region": "APAC"}]}, False),
        ({"all": [{"currency": "USD"}, {"region": "EMEA"}]}, True),
        ({"all": [{"currency": "USD"}, {"region": "APAC"}]}, False),
        ({"not": {"currency": "USD"}}, False),
        ({"not": {"currency": "USD", "region": "APAC"}}, True),
        ({"currency": "USD", "any": [{"region": "APAC"}]}, False),
        ({"any": [{"not": {"currency": "EUR"}}, {"value__isnull": True}]}, True),
        ({"not": {"any": [{"currency": "EUR"}, {"not": {"region": "EMEA"}}]}}, True),
        ({"any": [{"all": [{"currency": "USD"}, {"value__gt": 999}]}]}, True),
        ({"any": [{"all": [{"currency": "USD"}, {"value__gt": 1000}]}]}, False),
    ],
)
def test_nesting_truth_table(rule, expected):
    assert matches(rule, Facts()) is expected


def test_case_insensitive_lookups_mirror_postgres_upper():
    assert matches({"title__iexact": "straße"}, Facts(title="STRASSE"))  # str.upper(): ß -> SS
    assert matches({"title__icontains": "É"}, Facts(title="café"))


def test_predicate_tolerates_unsaved_instance_values():
    facts = Facts(value="1500.50", start_date="2025-03-01")
    assert matches({"value__gt": 1500, "start_date__gte": "2025-03-01"}, facts)
    assert matches({"value__lt": 2}, Facts(value=1.5))
    assert not matches({"value__lt": 2}, Facts(value="garbage"))
