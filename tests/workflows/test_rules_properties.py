"""The trigger-rule engine, property-based: round trips and plain negation."""

import json
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures import Facts, rule_objects
from workflows.rules import (
    Not,
    RuleValidationError,
    compile_predicate,
    compile_q,
    dump_rules,
    parse_rules,
)

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


@given(rule_objects(condition_entries))
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
@given(rule_objects(condition_entries, 2), facts_strategy)
def test_not_is_plain_negation(data, facts):
    rule = parse_rules(data)
    assert compile_predicate(Not(rule))(facts) is (not compile_predicate(rule)(facts))
