"""The trigger-rule engine: what it rejects (injection corpus, limits), naming the path."""

import pytest

from workflows.rules import (
    MAX_CONDITIONS,
    MAX_LIST_ITEMS,
    RuleValidationError,
    parse_rules,
)

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
