"""POST /api/contracts/validate-clauses/: findings, scoping, the compiled playbook, its cost."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditLog
from contracts import clause_selectors
from contracts.models import Contract
from core import rls
from tests.factories import ClauseRuleFactory, ContractFactory, UserFactory
from tests.fixtures import CLAUSES, VALIDATE, assert_400_on, rule_body, rule_url

pytestmark = pytest.mark.django_db


FINDING_FIELDS = {"clause", "rule", "severity", "message", "excerpt", "start", "end"}


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
