"""The trigger-rule engine: parsing and normalization, canonical dumps, compile_q."""

import json
from datetime import date
from decimal import Decimal

import pytest
from django.db.models import Q

from tests.fixtures import Facts
from workflows.rules import (
    ALLOWED_FIELDS,
    ALLOWED_LOOKUPS,
    LOOKUPS_BY_FIELD,
    AllOf,
    AnyOf,
    Condition,
    Not,
    RuleValidationError,
    compile_predicate,
    compile_q,
    dump_rules,
    parse_rules,
    validate_rules,
)

# --- normalization ---------------------------------------------------------------------------


def test_example_from_the_api_contract_normalizes():
    rule = parse_rules({"value__gte": 500000, "contract_type__in": ["MSA", "SOW"]})
    assert rule == AllOf(
        (
            Condition("value", "gte", Decimal("500000.00")),
            Condition("contract_type", "in", ("MSA", "SOW")),
        )
    )


def test_empty_rule_matches_everything():
    rule = parse_rules({})
    assert rule == AllOf(())
    assert compile_predicate(rule)(Facts())
    assert compile_predicate(rule)(Facts(value=None, start_date=None, end_date=None))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"currency": "USD"}, Condition("currency", "exact", "USD")),
        ({"contract_value__lt": 10}, Condition("value", "lt", Decimal("10.00"))),
        ({"contract_value": "12.5"}, Condition("value", "exact", Decimal("12.50"))),
        ({"value__gt": 0.1}, Condition("value", "gt", Decimal("0.10"))),
        ({"value__lte": "-3"}, Condition("value", "lte", Decimal("-3.00"))),
        ({"value__range": [1, "2.25"]}, Condition("value", "range", (Decimal(1), Decimal("2.25")))),
        ({"value__isnull": True}, Condition("value", "isnull", True)),
        ({"start_date__gte": "2025-02-28"}, Condition("start_date", "gte", date(2025, 2, 28))),
        (
            {"end_date__in": ["2025-01-01", "2024-02-29"]},
            Condition("end_date", "in", (date(2025, 1, 1), date(2024, 2, 29))),
        ),
        ({"has_blocking_findings": True}, Condition("has_blocking_findings", "exact", True)),
        ({"title__icontains": "%_"}, Condition("title", "icontains", "%_")),
        ({"metadata__cost_center": "CC1"}, Condition("metadata__cost_center", "exact", "CC1")),
        ({"metadata__n__gt": 1.5}, Condition("metadata__n", "gt", Decimal("1.5"))),
        (
            {"metadata__n__in": [1, 2.5]},
            Condition("metadata__n", "in", (Decimal(1), Decimal("2.5"))),
        ),
        ({"metadata__flag": False}, Condition("metadata__flag", "exact", False)),
        ({"metadata__x__isnull": True}, Condition("metadata__x", "isnull", True)),
    ],
)
def test_conditions_normalize(data, expected):
    assert parse_rules(data) == AllOf((expected,))


def test_nesting_normalizes_to_a_typed_tree():
    rule = parse_rules(
        {
            "currency": "USD",
            "any": [{"value__gte": 5}, {"not": {"region": "EMEA"}}],
            "all": [{"title__startswith": "M"}],
        }
    )
    assert rule == AllOf(
        (
            Condition("currency", "exact", "USD"),
            AnyOf(
                (
                    AllOf((Condition("value", "gte", Decimal("5.00")),)),
                    AllOf((Not(AllOf((Condition("region", "exact", "EMEA"),))),)),
                )
            ),
            AllOf((AllOf((Condition("title", "startswith", "M"),)),)),
        )
    )


def test_validate_rules_returns_none_or_raises():
    assert validate_rules({"currency": "USD"}) is None
    with pytest.raises(RuleValidationError):
        validate_rules({"currency": 1})


def test_dump_is_canonical_json():
    data = {
        "contract_value": 5,
        "start_date__lt": "2025-01-01",
        "metadata__n__in": [1, 2.5],
        "not": {"any": [{"title__in": ["a", "b"]}]},
    }
    dumped = dump_rules(parse_rules(data))
    assert dumped == {
        "value__exact": "5.00",
        "start_date__lt": "2025-01-01",
        "metadata__n__in": [1, 2.5],
        "not": {"any": [{"title__in": ["a", "b"]}]},
    }
    assert parse_rules(json.loads(json.dumps(dumped))) == parse_rules(data)


def test_dump_keeps_programmatic_duplicates():
    rule = AllOf((Condition("value", "gt", Decimal(1)), Condition("value", "gt", Decimal(2))))
    assert compile_predicate(parse_rules(dump_rules(rule)))(Facts(value=Decimal("1.5"))) is False


def test_allowed_constants_describe_the_language():
    assert "value" in ALLOWED_FIELDS
    assert "created_by" not in ALLOWED_FIELDS
    assert set(ALLOWED_LOOKUPS) == {
        "exact", "iexact", "lt", "lte", "gt", "gte", "in", "range",
        "contains", "icontains", "startswith", "istartswith", "isnull",
    }  # fmt: skip
    assert set(LOOKUPS_BY_FIELD) == {*ALLOWED_FIELDS, "metadata__<key>"}
    assert LOOKUPS_BY_FIELD["has_blocking_findings"] == ("exact", "isnull")
    assert "contains" not in LOOKUPS_BY_FIELD["value"]
    assert "contains" not in LOOKUPS_BY_FIELD["start_date"]


# --- compile_q (no database needed to build it) -------------------------------------------------


def test_compile_q_builds_q_objects():
    for rule in ({}, {"value__gte": 1}, {"not": {"metadata__k__in": [1, 2]}}):
        assert isinstance(compile_q(parse_rules(rule)), Q)
