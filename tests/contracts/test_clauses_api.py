"""Clause library (/api/admin/clauses/): create, read, update, delete, who may, filters."""

import uuid

import pytest

from audit.models import AuditLog
from contracts.models import ClauseRule
from core import rls
from tests.factories import ClauseRuleFactory, UserFactory
from tests.fixtures import CLAUSES, VALIDATE, assert_400_on, rule_body, rule_url

pytestmark = pytest.mark.django_db


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
