"""Clause library (/api/admin/clauses/, admin) and POST /api/contracts/validate-clauses/."""

import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit.models import AuditLog
from contracts import clause_selectors
from contracts.models import ClauseRule, Contract
from core import rls
from tests.factories import ClauseRuleFactory, ContractFactory, UserFactory

pytestmark = pytest.mark.django_db

CLAUSES = "/api/admin/clauses/"
VALIDATE = "/api/contracts/validate-clauses/"

RULE_FIELDS = {
    "id",
    "name",
    "category",
    "contract_types",
    "kind",
    "patterns",
    "severity",
    "guidance",
    "is_active",
    "created_by",
    "created_at",
    "updated_at",
}
FINDING_FIELDS = {"clause", "rule", "severity", "message", "excerpt", "start", "end"}


def rule_url(rule) -> str:
    return f"{CLAUSES}{getattr(rule, 'pk', None) or rule['id']}/"


def rule_body(**overrides) -> dict:
    return {
        "name": "No unlimited liability",
        "category": "liability",
        "contract_types": ["MSA", "SOW"],
        "kind": "prohibited",
        "patterns": ["unlimited liability", "liability shall be unlimited"],
        "severity": "blocking",
        "guidance": "Fallback: liability capped at 12 months of fees.",
        "is_active": True,
        **overrides,
    }


def assert_400_on(response, field: str, *, prefix: bool = False) -> dict:
    """A validation error on `field` (on `field` or one of its items when `prefix`)."""
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    if prefix:
        assert any(key.split("[")[0] == field for key in body["fields"]), body
    else:
        assert field in body["fields"], body
    return body


@pytest.fixture
def clause_manager(role_holder):
    """A member whose only capability is clauses.manage."""
    return role_holder("legal-ops", permissions=["clauses.manage"])


@pytest.fixture
def manager_client(api_client_for, clause_manager):
    return api_client_for(clause_manager)


# --------------------------------------------------------------------------- CRUD


def test_create_returns_201_with_every_field_and_is_audited(manager_client, clause_manager):
    response = manager_client.post(CLAUSES, rule_body(), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == RULE_FIELDS
    assert body["name"] == "No unlimited liability"
    assert body["contract_types"] == ["MSA", "SOW"]
    assert body["patterns"] == ["unlimited liability", "liability shall be unlimited"]
    assert body["kind"] == "prohibited"
    assert body["severity"] == "blocking"
    assert body["is_active"] is True
    assert body["created_by"] == f"{clause_manager.full_name} <{clause_manager.email}>"
    rule = ClauseRule.objects.get(pk=body["id"])
    assert rule.tenant_id == clause_manager.tenant_id
    assert rule.created_by_id == clause_manager.pk

    entry = AuditLog.objects.get(action="clause_rule_created")
    assert entry.resource_id == body["id"]
    assert entry.actor_id == clause_manager.pk
    assert entry.changes["patterns"] == [None, body["patterns"]]
    assert entry.changes["severity"] == [None, "blocking"]


def test_create_applies_defaults(manager_client):
    response = manager_client.post(
        CLAUSES,
        {"name": "Governing law", "kind": "required", "patterns": ["governing law"]},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["contract_types"] == []
    assert body["severity"] == "warning"
    assert body["category"] == ""
    assert body["guidance"] == ""
    assert body["is_active"] is True


def test_tenant_and_created_by_in_body_are_ignored(manager_client, clause_manager, other_tenant):
    stranger = UserFactory(tenant=other_tenant)
    response = manager_client.post(
        CLAUSES,
        rule_body(tenant=str(other_tenant.pk), created_by=str(stranger.pk), id=str(uuid.uuid4())),
        format="json",
    )

    assert response.status_code == 201, response.content
    rule = ClauseRule.objects.get(pk=response.json()["id"])
    assert rule.tenant_id == clause_manager.tenant_id
    assert rule.created_by_id == clause_manager.pk
    with rls.bypass("nothing was written in the other tenant"):
        assert not ClauseRule.objects.filter(tenant=other_tenant).exists()


def test_list_and_retrieve(client, tenant):
    first = ClauseRuleFactory(tenant=tenant, name="A rule")
    second = ClauseRuleFactory(tenant=tenant, name="B rule")

    listed = client.get(CLAUSES)
    detail = client.get(rule_url(second))

    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()["results"]] == [str(first.pk), str(second.pk)]
    assert listed.json()["count"] == 2
    assert detail.status_code == 200
    assert set(detail.json()) == RULE_FIELDS
    assert detail.json()["name"] == "B rule"


def test_put_replaces_the_rule_and_audits_only_changes(manager_client, clause_manager, tenant):
    rule = ClauseRuleFactory(tenant=tenant, name="Old name", severity="warning")

    response = manager_client.put(
        rule_url(rule),
        rule_body(name="Old name", severity="blocking", patterns=["unlimited liability"]),
        format="json",
    )

    assert response.status_code == 200, response.content
    rule.refresh_from_db()
    assert rule.severity == "blocking"
    assert rule.contract_types == ["MSA", "SOW"]
    entry = AuditLog.objects.get(action="clause_rule_updated")
    assert entry.resource_id == str(rule.pk)
    assert entry.actor_id == clause_manager.pk
    assert entry.changes["severity"] == ["warning", "blocking"]
    assert "name" not in entry.changes
    assert "patterns" not in entry.changes


def test_patch_changes_only_what_is_sent(manager_client, tenant):
    rule = ClauseRuleFactory(tenant=tenant, contract_types=["NDA"], severity="info")

    response = manager_client.patch(rule_url(rule), {"is_active": False}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["is_active"] is False
    assert response.json()["contract_types"] == ["NDA"]
    assert response.json()["severity"] == "info"
    entry = AuditLog.objects.get(action="clause_rule_updated")
    assert entry.changes == {"is_active": [True, False]}


def test_patch_without_changes_writes_no_audit(manager_client, tenant):
    rule = ClauseRuleFactory(tenant=tenant, severity="info")

    response = manager_client.patch(rule_url(rule), {"severity": "info"}, format="json")

    assert response.status_code == 200
    assert not AuditLog.objects.filter(action="clause_rule_updated").exists()


def test_delete_removes_the_rule_and_is_audited(manager_client, clause_manager, tenant):
    rule = ClauseRuleFactory(tenant=tenant, name="Going away")

    response = manager_client.delete(rule_url(rule))

    assert response.status_code == 204
    assert not ClauseRule.objects.filter(pk=rule.pk).exists()
    entry = AuditLog.objects.get(action="clause_rule_deleted")
    assert entry.resource_id == str(rule.pk)
    assert entry.actor_id == clause_manager.pk
    assert entry.changes["name"] == ["Going away", None]


def test_duplicate_name_in_the_tenant_is_400(manager_client, tenant, other_tenant):
    ClauseRuleFactory(tenant=tenant, name="Taken")
    ClauseRuleFactory(tenant=other_tenant, name="Theirs")

    duplicate = manager_client.post(CLAUSES, rule_body(name="Taken"), format="json")
    same_as_other_tenant = manager_client.post(CLAUSES, rule_body(name="Theirs"), format="json")

    assert_400_on(duplicate, "name")
    assert same_as_other_tenant.status_code == 201, same_as_other_tenant.content


def test_renaming_onto_an_existing_name_is_400(manager_client, tenant):
    ClauseRuleFactory(tenant=tenant, name="Taken")
    rule = ClauseRuleFactory(tenant=tenant, name="Mine")

    response = manager_client.patch(rule_url(rule), {"name": "Taken"}, format="json")

    assert_400_on(response, "name")
    rule.refresh_from_db()
    assert rule.name == "Mine"


# --------------------------------------------------------------------------- permissions


def test_any_member_may_read_the_library(client, tenant):
    rule = ClauseRuleFactory(tenant=tenant)
    assert client.get(CLAUSES).status_code == 200
    assert client.get(rule_url(rule)).status_code == 200


@pytest.mark.parametrize(
    ("method", "needs_rule", "body"),
    [
        ("post", False, rule_body()),
        ("put", True, rule_body()),
        ("patch", True, {"severity": "info"}),
        ("delete", True, None),
    ],
)
def test_writing_needs_clauses_manage(
    api_client_for, role_holder, tenant, method, needs_rule, body
):
    rule = ClauseRuleFactory(tenant=tenant, severity="warning")
    url = rule_url(rule) if needs_rule else CLAUSES
    plain = api_client_for(UserFactory(tenant=tenant))
    other_capability = api_client_for(role_holder("auditor", permissions=["audit.view"]))

    for denied in (plain, other_capability):
        response = getattr(denied, method)(url, body, format="json")
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "permission_denied"

    rule.refresh_from_db()
    assert rule.severity == "warning"
    assert ClauseRule.objects.count() == 1
    assert not AuditLog.objects.filter(action__startswith="clause_rule_").exists()


def test_tenant_admin_may_write(admin_client):
    assert admin_client.post(CLAUSES, rule_body(), format="json").status_code == 201


def test_anonymous_is_401(api_client, tenant):
    rule = ClauseRuleFactory(tenant=tenant)
    assert api_client.get(CLAUSES).status_code == 401
    assert api_client.get(rule_url(rule)).status_code == 401
    assert api_client.post(VALIDATE, {"text": "x"}, format="json").status_code == 401


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


# --------------------------------------------------------------------------- filters


def test_filters(client, tenant):
    required_msa = ClauseRuleFactory(
        tenant=tenant,
        name="Governing law",
        kind="required",
        severity="warning",
        category="Law",
        contract_types=["MSA"],
        guidance="Use the law of New York.",
    )
    prohibited_all = ClauseRuleFactory(
        tenant=tenant, name="Liability", kind="prohibited", severity="blocking", contract_types=[]
    )
    inactive_nda = ClauseRuleFactory(
        tenant=tenant,
        name="Non-solicit",
        kind="prohibited",
        severity="info",
        category="hr",
        contract_types=["NDA"],
        is_active=False,
    )

    def ids(**params):
        response = client.get(CLAUSES, params)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids(kind="required") == {str(required_msa.pk)}
    assert ids(severity="blocking") == {str(prohibited_all.pk)}
    assert ids(category="law") == {str(required_msa.pk)}
    assert ids(is_active="false") == {str(inactive_nda.pk)}
    # A contract type selects its own rules and the rules for every type.
    assert ids(contract_type="MSA") == {str(required_msa.pk), str(prohibited_all.pk)}
    assert ids(contract_type="NDA") == {str(inactive_nda.pk), str(prohibited_all.pk)}
    assert ids(contract_type="SOW") == {str(prohibited_all.pk)}
    assert ids(search="new york") == {str(required_msa.pk)}
    assert ids(search="solicit") == {str(inactive_nda.pk)}
    listed = client.get(CLAUSES, {"ordering": "-name"}).json()["results"]
    assert [row["name"] for row in listed] == ["Non-solicit", "Liability", "Governing law"]


@pytest.mark.parametrize("params", [{"kind": "nope"}, {"severity": "x"}])
def test_bad_filter_values_are_400(client, params):
    assert client.get(CLAUSES, params).status_code == 400


# --------------------------------------------------------------------------- validate-clauses


def test_validate_text_output_shape(client, tenant):
    prohibited = ClauseRuleFactory(
        tenant=tenant,
        name="Unlimited liability",
        patterns=["unlimited liability"],
        severity="blocking",
        guidance="Cap it.",
    )
    required = ClauseRuleFactory(
        tenant=tenant,
        name="Governing law",
        kind="required",
        patterns=["governing law"],
        severity="warning",
    )
    text = "Intro.\nThe supplier accepts UNLIMITED\n   liability for all claims."

    response = client.post(VALIDATE, {"text": text}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {
        "valid",
        "has_blocking_findings",
        "findings",
        "missing_required",
        "prohibited_found",
    }
    assert body["valid"] is False
    assert body["has_blocking_findings"] is True
    assert body["missing_required"] == ["Governing law"]
    assert body["prohibited_found"] == ["Unlimited liability"]
    assert all(set(finding) == FINDING_FIELDS for finding in body["findings"])
    missing, hit = body["findings"]
    assert missing["rule"] == str(required.pk)
    assert missing["clause"] == "Governing law"
    assert missing["severity"] == "warning"
    assert (missing["start"], missing["end"], missing["excerpt"]) == (None, None, "")
    assert hit["rule"] == str(prohibited.pk)
    assert hit["severity"] == "blocking"
    assert text[hit["start"] : hit["end"]] == "UNLIMITED\n   liability"
    assert "UNLIMITED liability" in hit["excerpt"]
    assert "Cap it." in hit["message"]


def test_validate_clean_text_is_valid(client, tenant):
    ClauseRuleFactory(tenant=tenant, patterns=["unlimited liability"])
    body = client.post(VALIDATE, {"text": "Liability is limited."}, format="json").json()
    assert body == {
        "valid": True,
        "has_blocking_findings": False,
        "findings": [],
        "missing_required": [],
        "prohibited_found": [],
    }


def test_warnings_alone_keep_the_text_valid(client, tenant):
    ClauseRuleFactory(tenant=tenant, patterns=["auto-renew"], severity="warning")
    body = client.post(VALIDATE, {"text": "This will auto-renew."}, format="json").json()
    assert body["valid"] is True
    assert body["has_blocking_findings"] is False
    assert [f["severity"] for f in body["findings"]] == ["warning"]


def test_validate_without_rules_is_valid(client):
    body = client.post(VALIDATE, {"text": "anything"}, format="json").json()
    assert body["valid"] is True
    assert body["findings"] == []


def test_empty_text_misses_every_required_clause(client, tenant):
    ClauseRuleFactory(tenant=tenant, name="Law", kind="required", patterns=["governing law"])
    body = client.post(VALIDATE, {"text": ""}, format="json").json()
    assert body["missing_required"] == ["Law"]


def test_scoping_by_contract_type(client, tenant):
    ClauseRuleFactory(tenant=tenant, name="Everywhere", contract_types=[], patterns=["alpha"])
    ClauseRuleFactory(tenant=tenant, name="MSA only", contract_types=["MSA"], patterns=["beta"])
    ClauseRuleFactory(
        tenant=tenant, name="NDA and SOW", contract_types=["NDA", "SOW"], patterns=["gamma"]
    )
    ClauseRuleFactory(tenant=tenant, name="Inactive", is_active=False, patterns=["alpha"])
    text = "alpha beta gamma"

    def found(**extra):
        response = client.post(VALIDATE, {"text": text, **extra}, format="json")
        assert response.status_code == 200, response.content
        return sorted(response.json()["prohibited_found"])

    assert found() == ["Everywhere"]
    assert found(contract_type="MSA") == ["Everywhere", "MSA only"]
    assert found(contract_type="SOW") == ["Everywhere", "NDA and SOW"]
    assert found(contract_type="NDA") == ["Everywhere", "NDA and SOW"]
    assert found(contract_type="msa") == ["Everywhere"]  # contract types are exact, like rules
    assert found(contract_type="Other") == ["Everywhere"]


def test_validate_stored_contract_uses_its_text_and_type(client, user, tenant):
    ClauseRuleFactory(tenant=tenant, name="NDA leak", contract_types=["NDA"], patterns=["leak"])
    nda = ContractFactory(created_by=user, contract_type="NDA", text="We may leak it.")
    msa = ContractFactory(created_by=user, contract_type="MSA", text="We may leak it.")

    for_nda = client.post(VALIDATE, {"contract": str(nda.pk)}, format="json")
    for_msa = client.post(VALIDATE, {"contract": str(msa.pk)}, format="json")

    assert for_nda.status_code == 200, for_nda.content
    assert for_nda.json()["prohibited_found"] == ["NDA leak"]
    assert for_msa.json()["prohibited_found"] == []


def test_validate_writes_nothing(client, user, tenant):
    ClauseRuleFactory(tenant=tenant, patterns=["leak"])
    contract = ContractFactory(created_by=user, text="We may leak it.")
    audit_rows = AuditLog.objects.count()

    assert client.post(VALIDATE, {"contract": str(contract.pk)}, format="json").status_code == 200
    assert client.post(VALIDATE, {"text": "leak"}, format="json").status_code == 200

    contract.refresh_from_db()
    assert contract.has_blocking_findings is False
    assert contract.clause_findings is None
    assert AuditLog.objects.count() == audit_rows
    assert Contract.objects.count() == 1


def test_other_tenants_contract_is_an_unknown_contract(client, other_tenant):
    theirs = ContractFactory(created_by=UserFactory(tenant=other_tenant), text="secret")
    missing = uuid.uuid4()

    for_theirs = client.post(VALIDATE, {"contract": str(theirs.pk)}, format="json")
    for_missing = client.post(VALIDATE, {"contract": str(missing)}, format="json")

    assert_400_on(for_theirs, "contract")
    assert_400_on(for_missing, "contract")
    assert for_theirs.json()["fields"]["contract"][0].replace(str(theirs.pk), "<id>") == (
        for_missing.json()["fields"]["contract"][0].replace(str(missing), "<id>")
    )


@pytest.mark.parametrize(
    ("method", "body"),
    [("get", None), ("put", rule_body()), ("patch", {"severity": "info"}), ("delete", None)],
)
def test_other_tenants_rule_is_404_and_untouched(admin_client, other_tenant, method, body):
    theirs = ClauseRuleFactory(tenant=other_tenant, severity="blocking")

    response = getattr(admin_client, method)(rule_url(theirs), body, format="json")

    assert response.status_code == 404, response.content
    assert response.json()["code"] == "not_found"
    with rls.bypass("the other tenant's rule, untouched; no tenant audited a change"):
        theirs.refresh_from_db()
        assert not AuditLog.objects.filter(action__startswith="clause_rule_").exists()
    assert theirs.severity == "blocking"


def test_list_shows_only_own_rules(client, tenant, other_tenant):
    mine = ClauseRuleFactory(tenant=tenant)
    ClauseRuleFactory(tenant=other_tenant)
    ids = [row["id"] for row in client.get(CLAUSES).json()["results"]]
    assert ids == [str(mine.pk)]


def test_other_tenants_rules_never_apply(client, other_tenant):
    ClauseRuleFactory(tenant=other_tenant, patterns=["secret"])
    ClauseRuleFactory(tenant=other_tenant, kind="required", patterns=["never here"])
    body = client.post(VALIDATE, {"text": "a secret"}, format="json").json()
    assert body["valid"] is True
    assert body["findings"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "non_field_errors"),
        ({"contract_type": "MSA"}, "non_field_errors"),
        ({"text": "x", "contract": str(uuid.uuid4())}, "contract"),
        ({"text": "nul\x00"}, "text"),
        ({"text": ["x"]}, "text"),
        ({"text": None}, "text"),
        ({"text": "x", "contract_type": "T" * 51}, "contract_type"),
        ({"text": "x", "contract_type": ""}, "contract_type"),
        ({"contract": "not-a-uuid"}, "contract"),
        ({"contract": 7}, "contract"),
    ],
)
def test_bad_validate_bodies_are_400(client, body, field):
    assert_400_on(client.post(VALIDATE, body, format="json"), field)


def test_text_and_contract_together_is_400(client, user):
    contract = ContractFactory(created_by=user)
    response = client.post(VALIDATE, {"contract": str(contract.pk), "text": "x"}, format="json")
    assert_400_on(response, "non_field_errors")


def test_contract_type_with_a_contract_is_400(client, user):
    contract = ContractFactory(created_by=user)
    body = {"contract": str(contract.pk), "contract_type": "NDA"}
    assert_400_on(client.post(VALIDATE, body, format="json"), "contract_type")


def test_text_limit_is_two_million_characters(client, tenant):
    ClauseRuleFactory(tenant=tenant, name="Needle", patterns=["needle"])
    at_limit = "x " * 999_997 + "needle"  # 2,000,000 characters
    assert len(at_limit) == 2_000_000

    accepted = client.post(VALIDATE, {"text": at_limit}, format="json")
    refused = client.post(VALIDATE, {"text": at_limit + "x"}, format="json")

    assert accepted.status_code == 200, accepted.content[:300]
    assert accepted.json()["prohibited_found"] == ["Needle"]
    assert_400_on(refused, "text")


# --------------------------------------------------------------------------- playbook cache


def test_repeated_validation_reuses_the_compiled_playbook(tenant):
    ClauseRuleFactory(tenant=tenant, patterns=["alpha"])
    first = clause_selectors.playbook_for(tenant=tenant, contract_type="MSA")
    compiled = clause_selectors.playbook_cache.compiled

    again = clause_selectors.playbook_for(tenant=tenant, contract_type="MSA")

    assert again is first
    assert clause_selectors.playbook_cache.compiled == compiled


def test_rule_changes_are_seen_at_once(manager_client, client, tenant):
    """Every kind of change reaches the next validation (the cache is keyed by rule content)."""
    rule = ClauseRuleFactory(tenant=tenant, name="R", patterns=["alpha"], contract_types=[])

    def found(text, **extra):
        body = client.post(VALIDATE, {"text": text, **extra}, format="json").json()
        return body["prohibited_found"]

    assert found("alpha beta") == ["R"]
    manager_client.patch(rule_url(rule), {"patterns": ["beta"]}, format="json")
    assert found("alpha") == []
    assert found("beta") == ["R"]
    manager_client.patch(rule_url(rule), {"name": "Renamed"}, format="json")
    assert found("beta") == ["Renamed"]
    manager_client.patch(rule_url(rule), {"contract_types": ["NDA"]}, format="json")
    assert found("beta") == []
    assert found("beta", contract_type="NDA") == ["Renamed"]
    manager_client.patch(rule_url(rule), {"is_active": False}, format="json")
    assert found("beta", contract_type="NDA") == []
    manager_client.patch(rule_url(rule), {"is_active": True}, format="json")
    assert found("beta", contract_type="NDA") == ["Renamed"]
    manager_client.delete(rule_url(rule))
    assert found("beta", contract_type="NDA") == []
    manager_client.post(CLAUSES, rule_body(name="New", contract_types=[], patterns=["beta"]))
    assert found("beta") == ["New"]


# --------------------------------------------------------------------------- query counts


def _count_queries(call) -> int:
    with CaptureQueriesContext(connection) as queries:
        call()
    return len(queries.captured_queries)


def _add_required_rules(tenant, n: int) -> None:
    for _ in range(n):
        ClauseRuleFactory(
            tenant=tenant, kind="required", severity="warning", patterns=[uuid.uuid4().hex]
        )


@pytest.mark.parametrize("by", ["text", "contract"])
def test_validate_costs_the_same_queries_for_1_and_50_rules(client, user, tenant, by):
    contract = ContractFactory(created_by=user, text="nothing relevant")
    body = {"text": "nothing relevant"} if by == "text" else {"contract": str(contract.pk)}

    def validate():
        response = client.post(VALIDATE, body, format="json")
        assert response.status_code == 200, response.content
        return response.json()

    _add_required_rules(tenant, 1)
    one = _count_queries(validate)
    _add_required_rules(tenant, 49)
    fifty = _count_queries(validate)

    assert len(validate()["missing_required"]) == 50
    assert one == fifty


def test_contract_create_costs_the_same_queries_for_1_and_50_rules(client, tenant):
    def create():
        response = client.post(
            "/api/contracts/",
            {"title": "T", "contract_type": "MSA", "text": "nothing relevant"},
            format="json",
        )
        assert response.status_code == 201, response.content
        return response.json()

    _add_required_rules(tenant, 1)
    one = _count_queries(create)
    _add_required_rules(tenant, 49)
    fifty = _count_queries(create)

    assert len(create()["clause_findings"]["missing_required"]) == 50
    assert one == fifty


# --------------------------------------------------------------------------- Django admin

ADMIN = "/admin/contracts/clauserule/"


@pytest.fixture
def browser(tenant) -> Client:
    browser = Client()
    browser.force_login(
        UserFactory(tenant=tenant, is_tenant_admin=True, is_staff=True, full_name="Staff")
    )
    return browser


def admin_form(**overrides) -> dict:
    return {
        "name": "Admin rule",
        "category": "liability",
        "contract_types": "MSA, SOW",
        "kind": "prohibited",
        "patterns": "unlimited liability\nliability, without limit",
        "severity": "blocking",
        "guidance": "Cap it.",
        "is_active": "on",
        **overrides,
    }


def test_admin_adds_a_rule_through_the_service(browser, tenant):
    response = browser.post(f"{ADMIN}add/", admin_form())

    assert response.status_code == 302, response.content.decode()[:2000]
    rule = ClauseRule.objects.get()
    assert rule.tenant_id == tenant.pk
    assert rule.contract_types == ["MSA", "SOW"]
    assert rule.patterns == ["unlimited liability", "liability, without limit"]
    assert AuditLog.objects.filter(action="clause_rule_created", resource_id=str(rule.pk)).exists()


def test_admin_edits_and_deletes_through_the_service(browser, tenant):
    rule = ClauseRuleFactory(tenant=tenant, patterns=["one"])

    page = browser.get(f"{ADMIN}{rule.pk}/change/")
    assert page.status_code == 200
    assert "one" in page.content.decode()

    edited = browser.post(f"{ADMIN}{rule.pk}/change/", admin_form(patterns="two\nthree"))
    assert edited.status_code == 302
    rule.refresh_from_db()
    assert rule.patterns == ["two", "three"]
    assert AuditLog.objects.filter(action="clause_rule_updated").exists()

    deleted = browser.post(f"{ADMIN}{rule.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert not ClauseRule.objects.exists()
    assert AuditLog.objects.filter(action="clause_rule_deleted").exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"patterns": "fine\n" + "x" * 501}, "patterns"),
        ({"patterns": "   \n\n"}, "patterns"),
        ({"patterns": "nul\x00byte"}, "patterns"),
        ({"kind": "forbidden"}, "kind"),
        ({"severity": "critical"}, "severity"),
        ({"contract_types": "MSA, " + "X" * 51}, "contract_types"),
        ({"name": "Taken"}, "name"),
    ],
)
def test_admin_form_errors_never_500(browser, tenant, overrides, field):
    ClauseRuleFactory(tenant=tenant, name="Taken")

    response = browser.post(f"{ADMIN}add/", admin_form(**overrides))

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert ClauseRule.objects.count() == 1


def test_admin_hides_other_tenants_rules(browser, other_tenant):
    theirs = ClauseRuleFactory(tenant=other_tenant, name="Outsider rule")

    listing = browser.get(ADMIN)
    detail = browser.get(f"{ADMIN}{theirs.pk}/change/", follow=True)

    assert listing.status_code == 200
    assert "Outsider rule" not in listing.content.decode()
    assert "Outsider rule" not in detail.content.decode()
