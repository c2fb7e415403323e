"""Unit tests for the trigger-rule engine: parsing, normalization, the predicate, rejection."""

import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import pytest
from django.db.models import Q
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workflows.rules import (
    ALLOWED_FIELDS,
    ALLOWED_LOOKUPS,
    LOOKUPS_BY_FIELD,
    MAX_CONDITIONS,
    MAX_LIST_ITEMS,
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


@dataclass
class Facts:
    value: Decimal | None = Decimal("1000.00")
    contract_type: str = "MSA"
    currency: str = "USD"
    counterparty: str = "Acme Corp"
    department: str = "Legal"
    region: str = "EMEA"
    title: str = "Master Services Agreement"
    start_date: date | None = date(2025, 1, 1)
    end_date: date | None = date(2025, 12, 31)
    has_blocking_findings: bool = False
    metadata: dict = field(default_factory=dict)


def matches(rule: dict, facts: Facts) -> bool:
    return compile_predicate(parse_rules(rule))(facts)


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


# --- rejection -------------------------------------------------------------------------------


def nested(key: str, levels: int, inner: dict) -> dict:
    for _ in range(levels):
        inner = {key: inner} if key == "not" else {key: [inner]}
    return inner


INJECTION_CORPUS = [
    # (rule, expected path)
    ({"created_by__password": "x"}, "created_by__password"),
    ({"created_by__password__startswith": "pbkdf2"}, "created_by__password__startswith"),
    ({"tenant__id": "x"}, "tenant__id"),
    ({"tenant__name": "x"}, "tenant__name"),
    ({"tenant_id": "x"}, "tenant_id"),
    ({"id": "x"}, "id"),
    ({"text__contains": "secret"}, "text__contains"),
    ({"status": "draft"}, "status"),
    ({"metadata__a__b": "x"}, "metadata__a__b"),
    ({"metadata__a__b__exact": "x"}, "metadata__a__b__exact"),
    ({"metadata": {"a": 1}}, "metadata"),
    ({"metadata__": "x"}, "metadata__"),
    ({"metadata___x": "x"}, "metadata___x"),
    ({"metadata__0": "x"}, "metadata__0"),
    ({"metadata__a-b": "x"}, "metadata__a-b"),
    ({"metadata__ключ": "x"}, "metadata__ключ"),
    ({"metadata__k__regex": ".*"}, "metadata__k__regex"),
    ({"_connector": "OR"}, "_connector"),
    ({"_negated": True}, "_negated"),
    ({"any": [{"_connector": "OR"}]}, "any[0]._connector"),
    ({"title__regex": ".*"}, "title__regex"),
    ({"title__iregex": ".*"}, "title__iregex"),
    ({"title__search": "x"}, "title__search"),
    ({"start_date__year": 2025}, "start_date__year"),
    ({"title__exact__exact": "x"}, "title__exact__exact"),
    ({"value__contains": "1"}, "value__contains"),
    ({"start_date__startswith": "2025"}, "start_date__startswith"),
    ({"has_blocking_findings__gt": False}, "has_blocking_findings__gt"),
    ({"has_blocking_findings": 1}, "has_blocking_findings"),
    ({"has_blocking_findings": "true"}, "has_blocking_findings"),
    ({"value__gte": True}, "value__gte"),
    ({"value__gte": "1e400"}, "value__gte"),
    ({"value__gte": "NaN"}, "value__gte"),
    ({"value__gte": "Infinity"}, "value__gte"),
    ({"value__gte": float("nan")}, "value__gte"),
    ({"value__gte": float("inf")}, "value__gte"),
    ({"value__gte": " 1"}, "value__gte"),
    ({"value__gte": "1,000"}, "value__gte"),
    ({"value__gte": 10**16}, "value__gte"),
    ({"value__gte": 1e16}, "value__gte"),
    ({"value__gte": 10**400}, "value__gte"),
    ({"value__gte": 0.001}, "value__gte"),
    ({"value__gte": None}, "value__gte"),
    ({"value": None}, "value"),
    ({"metadata__k__gt": float("nan")}, "metadata__k__gt"),
    ({"metadata__k__gt": 10**20}, "metadata__k__gt"),
    ({"metadata__k__gt": True}, "metadata__k__gt"),
    ({"metadata__k": None}, "metadata__k"),
    ({"metadata__k": [1]}, "metadata__k"),
    ({"metadata__k__contains": 1}, "metadata__k__contains"),
    ({"metadata__k__in": [1, "a"]}, "metadata__k__in"),
    ({"metadata__k__in": [True]}, "metadata__k__in"),
    ({"start_date": "2025-1-1"}, "start_date"),
    ({"start_date": "2025-02-30"}, "start_date"),
    ({"start_date": "20250101"}, "start_date"),
    ({"start_date": "2025-01-01T00:00:00"}, "start_date"),
    ({"start_date": 20250101}, "start_date"),
    ({"title": 5}, "title"),
    ({"title__contains": ["x"]}, "title__contains"),
    ({"title": "a\x00b"}, "title"),
    ({"metadata__k": "a\x00b"}, "metadata__k"),
    ({"title": "\ud800"}, "title"),
    ({"title": "x" * 1001}, "title"),
    ({"title__in": []}, "title__in"),
    ({"title__in": "MSA"}, "title__in"),
    ({"title__in": ["a", 1]}, "title__in"),
    ({"value__range": [1]}, "value__range"),
    ({"value__range": [1, 2, 3]}, "value__range"),
    ({"value__range": {"low": 1}}, "value__range"),
    ({"value__isnull": "yes"}, "value__isnull"),
    ({"value__isnull": 1}, "value__isnull"),
    ({"value__in": [1] * (MAX_LIST_ITEMS + 1)}, "value__in"),
    ({"value__in": [1] * 10**6}, "value__in"),
    ({"any": []}, "any"),
    ({"all": []}, "all"),
    ({"any": {"value": 1}}, "any"),
    ({"any": [1]}, "any[0]"),
    ({"any": [{}]}, "any[0]"),
    ({"not": []}, "not"),
    ({"not": "value"}, "not"),
    ({"not": {}}, "not"),
    ({"not": {"created_by__email": "x"}}, "not.created_by__email"),
    ({"any": [{"value": 1}, {"value__regex": "1"}]}, "any[1].value__regex"),
    (nested("not", 6, {"value": 1}), "not.not.not.not.not.not"),
    (nested("any", 6, {"value": 1}), "any[0].any[0].any[0].any[0].any[0].any"),
    ({"value": 1, "value__exact": 2}, "value__exact"),
    ({"value__gt": 1, "contract_value__gt": 2}, "contract_value__gt"),
    ({"": 1}, ""),
    ({" value": 1}, " value"),
    ({"value ": 1}, "value "),
    ({"__": 1}, "__"),
    ({"____": 1}, "____"),
    ({"value__": 1}, "value__"),
    ({"valué": 1}, "valué"),
    ({"VALUE": 1}, "VALUE"),
    ({"Any": [{"value": 1}]}, "Any"),
    ({"pk": 1}, "pk"),
    ({1: "x"}, "1"),
    (None, ""),
    ([], ""),
    ([{"value": 1}], ""),
    ("value", ""),
    (1, ""),
]


@pytest.mark.parametrize(("rule", "path"), INJECTION_CORPUS)
def test_injection_corpus_is_rejected_with_the_offending_path(rule, path):
    with pytest.raises(RuleValidationError) as excinfo:
        parse_rules(rule)
    assert excinfo.value.path == path
    assert excinfo.value.message
    assert str(excinfo.value).startswith(f"{path or '<root>'}: ")


def test_limit_on_conditions():
    ok = {f"metadata__k{i}": i for i in range(MAX_CONDITIONS)}
    parse_rules(ok)
    with pytest.raises(RuleValidationError) as excinfo:
        parse_rules({**ok, "value": 1})
    assert excinfo.value.path == "value"
    spread = {"any": [{f"metadata__k{i}": i} for i in range(MAX_CONDITIONS + 1)]}
    with pytest.raises(RuleValidationError) as excinfo:
        parse_rules(spread)
    assert excinfo.value.path == f"any[{MAX_CONDITIONS}].metadata__k{MAX_CONDITIONS}"


def test_limit_on_depth():
    parse_rules(nested("not", 5, {"value": 1}))
    parse_rules(nested("all", 5, {"value": 1}))
    with pytest.raises(RuleValidationError):
        parse_rules(nested("all", 6, {"value": 1}))


def test_limit_on_list_items_is_for_the_whole_rule():
    half = MAX_LIST_ITEMS // 2
    parse_rules({"value__in": [1] * half, "title__in": ["a"] * half})
    with pytest.raises(RuleValidationError) as excinfo:
        parse_rules({"value__in": [1] * half, "title__in": ["a"] * (half + 1)})
    assert excinfo.value.path == "title__in"


def test_limit_on_string_length():
    parse_rules({"title": "x" * 1000})


def test_long_keys_are_shortened_in_the_path():
    with pytest.raises(RuleValidationError) as excinfo:
        parse_rules({"x" * 10_000: 1})
    assert excinfo.value.path == "x" * 100 + "..."


# --- compile_q (no database needed to build it) -------------------------------------------------


def test_compile_q_builds_q_objects():
    for rule in ({}, {"value__gte": 1}, {"not": {"metadata__k__in": [1, 2]}}):
        assert isinstance(compile_q(parse_rules(rule)), Q)


# --- properties --------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=30,
)
rule_keys = st.sampled_from(
    [
        "value",
        "value__gte",
        "contract_value__in",
        "title__icontains",
        "start_date__range",
        "has_blocking_findings",
        "metadata__k",
        "metadata__k__lt",
        "metadata__k__isnull",
        "any",
        "all",
        "not",
        "_connector",
    ]
) | st.text(max_size=20)
rule_like = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(rule_keys, children, max_size=4)
    ),
    max_leaves=40,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, rule_like))
def test_parse_only_raises_rule_validation_error(data):
    try:
        rule = parse_rules(data)
    except RuleValidationError:
        return
    compile_predicate(rule)(Facts())
    compile_q(rule)


ascii_text = st.text(alphabet="abAB%_\\ 01", max_size=6)
money = st.one_of(
    st.integers(-(10**15), 10**15),
    st.decimals(-(10**15), 10**15, places=2).map(str),
    st.sampled_from([0.1, 0.5, 1.25, 1e15]),
)
dates = st.dates().map(date.isoformat)
metadata_numbers = st.integers(-(10**12), 10**12) | st.floats(-1e12, 1e12, allow_nan=False)


def _condition_entries():
    by_kind = {
        "money": (["value", "contract_value"], money),
        "date": (["start_date", "end_date"], dates),
        "string": (["title", "currency", "counterparty", "region"], ascii_text),
    }
    entries = []
    for fields, values in by_kind.values():
        names = st.sampled_from(fields)
        for lookup in ("exact", "lt", "lte", "gt", "gte"):
            entries.append(st.tuples(names.map(f"{{}}__{lookup}".format), values))
        entries.append(st.tuples(names, values))
        entries.append(
            st.tuples(names.map("{}__in".format), st.lists(values, min_size=1, max_size=4))
        )
        entries.append(
            st.tuples(names.map("{}__range".format), st.lists(values, min_size=2, max_size=2))
        )
        entries.append(st.tuples(names.map("{}__isnull".format), st.booleans()))
    strings = st.sampled_from(["title", "department", "metadata__k"])
    for lookup in ("iexact", "contains", "icontains", "startswith", "istartswith"):
        entries.append(st.tuples(strings.map(f"{{}}__{lookup}".format), ascii_text))
    entries += [
        st.tuples(st.just("has_blocking_findings"), st.booleans()),
        st.tuples(st.just("metadata__k"), ascii_text | metadata_numbers | st.booleans()),
        st.tuples(st.just("metadata__k__gte"), ascii_text | metadata_numbers),
        st.tuples(st.just("metadata__k__in"), st.lists(metadata_numbers, min_size=1, max_size=3)),
        st.tuples(st.just("metadata__k__range"), st.lists(ascii_text, min_size=2, max_size=2)),
        st.tuples(st.just("metadata__k__isnull"), st.booleans()),
    ]
    return st.one_of(entries)


# Deferred, so nested rule strategies share one instance with a short repr.
condition_entries = st.deferred(_condition_entries)


def _identity(key: str) -> tuple[str, str]:
    """The condition a key denotes, so generated objects never repeat one."""
    parts = key.replace("contract_value", "value", 1).split("__")
    if parts[0] == "metadata":
        parts = ["__".join(parts[:2]), *parts[2:]]
    return parts[0], parts[1] if len(parts) > 1 else "exact"


def _unique_keys(entries: list[tuple[str, object]]) -> dict:
    kept: dict = {}
    seen: set = set()
    for key, value in entries:
        if _identity(key) not in seen:
            seen.add(_identity(key))
            kept[key] = value
    return kept


def rule_objects(depth: int = 3):
    entries = st.lists(condition_entries, min_size=1, max_size=2).map(_unique_keys)
    if depth == 0:
        return entries
    inner = rule_objects(depth - 1)
    operator = st.one_of(
        st.tuples(st.just("not"), inner),
        st.tuples(st.sampled_from(["any", "all"]), st.lists(inner, min_size=1, max_size=2)),
    )
    # An object holds at least one condition or one operator (nested objects may not be empty).
    return st.one_of(
        st.builds(lambda plain, op: {**plain, **dict(op)}, entries, st.lists(operator, max_size=1)),
        operator.map(lambda op: dict([op])),
    )


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(rule_objects())
def test_valid_rules_round_trip(data):
    rule = parse_rules(data)
    dumped = dump_rules(rule)
    assert parse_rules(json.loads(json.dumps(dumped))) == rule
    assert dump_rules(parse_rules(dumped)) == dumped


facts_strategy = st.builds(
    Facts,
    value=st.none() | st.decimals(-(10**6), 10**6, places=2),
    title=ascii_text,
    start_date=st.none() | st.dates(),
    metadata=st.dictionaries(st.just("k"), st.none() | ascii_text | metadata_numbers),
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(rule_objects(2), facts_strategy)
def test_not_is_plain_negation(data, facts):
    rule = parse_rules(data)
    assert compile_predicate(Not(rule))(facts) is (not compile_predicate(rule)(facts))
