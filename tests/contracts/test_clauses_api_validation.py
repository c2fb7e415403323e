"""Clause library (/api/admin/clauses/): rules that are refused, and phrases matched literally."""

import pytest

from contracts.models import ClauseRule
from tests.factories import ClauseRuleFactory
from tests.fixtures import CLAUSES, VALIDATE, assert_400_on, rule_body, rule_url

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("patterns", "bad_index"),
    [
        ([""], 0),
        (["   \n\t "], 0),
        (["fine", "nul\x00byte"], 1),
        (["fine", "also fine", "x" * 501], 2),
    ],
    ids=["empty", "whitespace-only", "nul", "501-chars"],
)
def test_bad_phrases_are_400_naming_the_phrase(manager_client, patterns, bad_index):
    response = manager_client.post(CLAUSES, rule_body(patterns=patterns), format="json")

    body = assert_400_on(response, f"patterns[{bad_index}]")
    assert len(body["fields"]) == 1
    assert not ClauseRule.objects.exists()


def test_500_char_phrase_is_accepted(manager_client):
    response = manager_client.post(CLAUSES, rule_body(patterns=["x" * 500]), format="json")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    "patterns",
    [[], "unlimited liability", None, [["nested"]], [{"a": 1}], [f"p {n}" for n in range(51)]],
    ids=["empty-list", "string", "null", "nested", "object", "51-phrases"],
)
def test_bad_pattern_lists_are_400(manager_client, patterns):
    response = manager_client.post(CLAUSES, rule_body(patterns=patterns), format="json")
    assert_400_on(response, "patterns", prefix=True)
    assert not ClauseRule.objects.exists()


def test_patterns_are_required(manager_client):
    body = rule_body()
    del body["patterns"]
    assert_400_on(manager_client.post(CLAUSES, body, format="json"), "patterns")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", "forbidden"),
        ("kind", ""),
        ("kind", None),
        ("severity", "critical"),
        ("severity", 3),
        ("name", ""),
        ("name", "n" * 201),
        ("name", "nul\x00name"),
        ("contract_types", "MSA"),
        ("contract_types", [""]),
        ("contract_types", ["X" * 51]),
        ("contract_types", [f"T{n}" for n in range(51)]),
        ("guidance", "g" * 5001),
        ("is_active", "maybe"),
    ],
)
def test_bad_fields_are_400(manager_client, field, value):
    response = manager_client.post(CLAUSES, rule_body(**{field: value}), format="json")
    assert_400_on(response, field, prefix=True)
    assert not ClauseRule.objects.exists()


def test_patch_with_a_bad_phrase_is_400_and_changes_nothing(manager_client, tenant):
    rule = ClauseRuleFactory(tenant=tenant, patterns=["keep me"])

    response = manager_client.patch(rule_url(rule), {"patterns": ["ok", ""]}, format="json")

    assert_400_on(response, "patterns[1]")
    rule.refresh_from_db()
    assert rule.patterns == ["keep me"]


def test_lone_surrogate_in_a_phrase_is_400(manager_client):
    raw = b'{"name": "S", "kind": "required", "patterns": ["lone \\ud800"]}'
    response = manager_client.generic("POST", CLAUSES, raw, content_type="application/json")
    assert_400_on(response, "patterns[0]")


def test_regex_metacharacters_are_stored_and_matched_literally(manager_client, client):
    patterns = ["(a+)+$", "limitation.*liability", "[x]"]
    created = manager_client.post(CLAUSES, rule_body(contract_types=[], patterns=patterns))
    assert created.status_code == 201, created.content
    assert created.json()["patterns"] == patterns
    assert ClauseRule.objects.get().patterns == patterns

    # As regular expressions these would match here; as phrases they do not.
    regex_bait = client.post(
        VALIDATE, {"text": "aaaa a limitation of any liability x"}, format="json"
    ).json()
    assert regex_bait["valid"] is True
    assert regex_bait["findings"] == []

    text = "Pay (a+)+$ now; see [x] and limitation.*liability."
    literal = client.post(VALIDATE, {"text": text}, format="json").json()
    assert literal["valid"] is False
    assert literal["prohibited_found"] == ["No unlimited liability"]
    hits = sorted(text[f["start"] : f["end"]] for f in literal["findings"])
    assert hits == sorted(patterns)


def test_catastrophic_backtracking_phrase_is_harmless(manager_client, client):
    manager_client.post(CLAUSES, rule_body(contract_types=[], patterns=["(a+)+$"]))
    response = client.post(VALIDATE, {"text": "a" * 50_000 + "!"}, format="json")
    assert response.status_code == 200
    assert response.json()["valid"] is True
