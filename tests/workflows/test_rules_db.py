"""The SQL (``compile_q``) and the Python predicate must select the same contracts in PostgreSQL."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.models import Contract
from tests.fixtures import rule_objects
from workflows.rules import compile_predicate, compile_q, parse_rules

pytestmark = pytest.mark.django_db


def selected(tenant, data: dict) -> set:
    """Ids chosen by the database, after asserting the predicate chooses the same ones."""
    rule = parse_rules(data)
    in_db = set(
        Contract.objects.filter(tenant=tenant).filter(compile_q(rule)).values_list("id", flat=True)
    )
    predicate = compile_predicate(rule)
    in_python = {c.id for c in Contract.objects.filter(tenant=tenant) if predicate(c)}
    assert in_db == in_python, data
    return in_db


def titles(tenant, data: dict) -> set[str]:
    ids = selected(tenant, data)
    return set(Contract.objects.filter(id__in=ids).values_list("title", flat=True))


def make(tenant, user, **fields) -> Contract:
    fields.setdefault("contract_type", "MSA")
    return Contract.objects.create(tenant=tenant, created_by=user, **fields)


def test_like_wildcards_in_rule_values_are_literal(tenant, user):
    for title in ["100% sure", "100 percent", "a_b", "axb", "back\\slash", "backslash"]:
        make(tenant, user, title=title)
    assert titles(tenant, {"title__contains": "%"}) == {"100% sure"}
    assert titles(tenant, {"title__contains": "0%"}) == {"100% sure"}
    assert titles(tenant, {"title__icontains": "A_B"}) == {"a_b"}
    assert titles(tenant, {"title__startswith": "a_"}) == {"a_b"}
    assert titles(tenant, {"title__istartswith": "BACK\\"}) == {"back\\slash"}
    assert titles(tenant, {"title__contains": "\\"}) == {"back\\slash"}


def test_not_over_null_columns_is_plain_negation(tenant, user):
    make(tenant, user, title="null", value=None, start_date=None)
    make(tenant, user, title="small", value=Decimal(5), start_date=date(2024, 1, 1))
    make(tenant, user, title="big", value=Decimal(500), start_date=date(2026, 1, 1))
    assert titles(tenant, {"value__gte": 100}) == {"big"}
    assert titles(tenant, {"not": {"value__gte": 100}}) == {"null", "small"}
    assert titles(tenant, {"not": {"not": {"value__gte": 100}}}) == {"big"}
    assert titles(
        tenant, {"not": {"any": [{"value__gt": 1}, {"start_date__gt": "2025-01-01"}]}}
    ) == {"null"}
    assert titles(tenant, {"not": {"value__in": [5], "start_date__lt": "2030-01-01"}}) == {
        "null",
        "big",
    }
    assert titles(tenant, {"value__isnull": True}) == {"null"}
    assert titles(tenant, {"not": {"value__isnull": True}}) == {"small", "big"}
    assert titles(tenant, {}) == {"null", "small", "big"}


def test_string_order_is_code_point_order(tenant, user):
    for title in ["Zed", "apple", "été", "Éclair"]:
        make(tenant, user, title=title)
    assert titles(tenant, {"title__lt": "a"}) == {"Zed"}
    assert titles(tenant, {"title__gt": "z"}) == {"été", "Éclair"}
    assert titles(tenant, {"title__range": ["A", "b"]}) == {"Zed", "apple"}


def test_metadata_conditions_are_type_aware(tenant, user):
    make(tenant, user, title="number", metadata={"k": 2})
    make(tenant, user, title="float", metadata={"k": 0.1})
    make(tenant, user, title="string", metadata={"k": "2"})
    make(tenant, user, title="true", metadata={"k": True})
    make(tenant, user, title="null", metadata={"k": None})
    make(tenant, user, title="missing", metadata={})
    make(tenant, user, title="object", metadata={"k": {"k": 2}})
    assert titles(tenant, {"metadata__k__gt": 1}) == {"number"}
    assert titles(tenant, {"metadata__k__gte": 0.1}) == {"number", "float"}
    assert titles(tenant, {"metadata__k__gt": 0.1}) == {"number"}
    assert titles(tenant, {"metadata__k": 2.0}) == {"number"}
    assert titles(tenant, {"metadata__k": "2"}) == {"string"}
    assert titles(tenant, {"metadata__k__gt": "1"}) == {"string"}
    assert titles(tenant, {"metadata__k": True}) == {"true"}
    assert titles(tenant, {"metadata__k__in": [2, 3]}) == {"number"}
    assert titles(tenant, {"metadata__k__isnull": True}) == {"null", "missing"}
    assert titles(tenant, {"not": {"metadata__k__gt": 1}}) == {
        "float",
        "string",
        "true",
        "null",
        "missing",
        "object",
    }


# --- property: SQL and Python agree ------------------------------------------------------------

ALPHABET = "aAbZ%_\\ é"
ASCII_ALPHABET = "aAbZ%_\\ "
short_text = st.text(alphabet=ALPHABET, max_size=3)
ascii_text = st.text(alphabet=ASCII_ALPHABET, max_size=2)
first_day = date(2024, 12, 30)
days = st.integers(0, 4).map(lambda n: first_day + timedelta(days=n))
amounts = st.sampled_from(["0", "0.10", "1", "1.50", "100", "500000", "9999999999999999.99"])
metadata_values = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, 2, -2, 0.1, 1.5, 2.0, 1e-7, 10**15]),
    short_text,
    st.just([1]),
    st.just({"k": 1}),
)


@st.composite
def contract_fields(draw) -> dict:
    start = draw(st.none() | days)
    end = draw(st.none() | days)
    if start and end and end < start:
        start, end = end, start
    return {
        "title": draw(short_text),
        "contract_type": draw(st.sampled_from(["MSA", "SOW", "msa", ""])),
        "currency": draw(st.sampled_from(["USD", "EUR", "usd"])),
        "counterparty": draw(short_text),
        "department": draw(short_text),
        "region": draw(short_text),
        "value": draw(st.none() | amounts.map(Decimal)),
        "start_date": start,
        "end_date": end,
        "has_blocking_findings": draw(st.booleans()),
        "metadata": draw(st.dictionaries(st.sampled_from(["k", "n"]), metadata_values, max_size=2)),
    }


rule_amounts = amounts | st.sampled_from([-1, 0.1, 1.5, 250, "1.49"])
rule_days = days.map(date.isoformat)
rule_numbers = st.sampled_from([0, 1, 2, -2, 0.1, 1.5, 1e-7, 10**15, 3])
STRING_FIELDS = ["title", "contract_type", "currency", "counterparty", "department", "region"]


def _entries_for(fields: list[str], values, lookups: list[str]):
    names = st.sampled_from(fields)
    options = []
    for lookup in lookups:
        if lookup == "in":
            values_for = st.lists(values, min_size=1, max_size=3)
        elif lookup == "range":
            values_for = st.lists(values, min_size=2, max_size=2)
        elif lookup == "isnull":
            values_for = st.booleans()
        else:
            values_for = values
        options.append(st.tuples(names.map(f"{{}}__{lookup}".format), values_for))
    return options


def _condition_entries():
    ordered = ["exact", "lt", "lte", "gt", "gte", "in", "range", "isnull"]
    strings = st.sampled_from(["MSA", "msa", "USD", "usd", ""]) | short_text
    metadata_keys = ["metadata__k", "metadata__n"]
    return st.one_of(
        *_entries_for(["value", "contract_value"], rule_amounts, ordered),
        *_entries_for(["start_date", "end_date"], rule_days, ordered),
        *_entries_for(STRING_FIELDS, strings, ["exact", "lt", "gte", "in", "range", "isnull"]),
        *_entries_for(STRING_FIELDS, short_text, ["contains", "startswith"]),
        *_entries_for(STRING_FIELDS, ascii_text, ["iexact", "icontains", "istartswith"]),
        *_entries_for(["has_blocking_findings"], st.booleans(), ["exact", "isnull"]),
        *_entries_for(metadata_keys, short_text | rule_numbers | st.booleans(), ["exact"]),
        *_entries_for(metadata_keys, rule_numbers, ["lt", "gte", "in", "range"]),
        *_entries_for(metadata_keys, short_text, ["gt", "lte", "in", "range", "contains"]),
        *_entries_for(metadata_keys, ascii_text, ["iexact", "icontains", "istartswith"]),
        *_entries_for(metadata_keys, st.none(), ["isnull"]),
    )


condition_entries = st.deferred(_condition_entries)


db_rules = st.deferred(lambda: rule_objects(condition_entries))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    contracts=st.lists(contract_fields(), min_size=10, max_size=10),
    rules=st.lists(db_rules, min_size=1, max_size=5),
)
def test_compile_q_agrees_with_predicate(tenant, user, contracts, rules):
    Contract.objects.filter(tenant=tenant).delete()
    for fields in contracts:
        Contract.objects.create(tenant=tenant, created_by=user, **fields)
    for data in rules:
        selected(tenant, data)
