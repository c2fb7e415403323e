"""/api/workflows/config/: trigger conditions and stages that are refused, and why."""

import uuid

import pytest

from tests.factories import UserFactory
from tests.fixtures import URL, assert_validation_error, body, create
from tests.fixtures import definitions_detail_url as detail_url
from tests.fixtures import definitions_stage as stage
from workflows.models import WorkflowDefinition

pytestmark = pytest.mark.django_db


# --- validation -----------------------------------------------------------------------------


INJECTIONS = [
    pytest.param({"created_by__password__startswith": "pbkdf2"}, "created_by", id="relation"),
    pytest.param({"tenant__name": "Acme"}, "tenant__name", id="tenant-relation"),
    pytest.param({"_connector": "OR"}, "_connector", id="q-connector"),
    pytest.param({"_negated": True}, "_negated", id="q-negated"),
    pytest.param({"value__regex": "^1"}, "value__regex", id="regex"),
    pytest.param({"contract_type__iregex": "msa"}, "contract_type__iregex", id="iregex"),
    pytest.param({"metadata__a__b": 1}, "metadata__a__b", id="nested-metadata"),
    pytest.param({"metadata__1": "x"}, "metadata__1", id="numeric-metadata-key"),
    pytest.param({"owner_email": "x"}, "owner_email", id="unknown-field"),
    pytest.param({"value__between": [1, 2]}, "value__between", id="unknown-lookup"),
    pytest.param({"pk__in": [1]}, "pk__in", id="pk"),
    pytest.param({"id": "x"}, "id", id="id"),
    pytest.param({"value__gte": True}, "value__gte", id="bool-for-number"),
    pytest.param({"value__gte": "abc"}, "value__gte", id="text-for-number"),
    pytest.param({"value__gte": "1e5"}, "value__gte", id="exponent-string"),
    pytest.param({"value__gte": 1.005}, "value__gte", id="three-decimals"),
    pytest.param({"value__gte": 10**20}, "value__gte", id="huge-int"),
    pytest.param({"value__lt": -(10**40)}, "value__lt", id="huge-negative"),
    pytest.param({"metadata__score__gt": 10**30}, "metadata__score__gt", id="huge-metadata"),
    pytest.param({"value__gte": None}, "value__gte", id="null"),
    pytest.param({"start_date__gte": "2024-13-01"}, "start_date__gte", id="bad-date"),
    pytest.param({"has_blocking_findings": "yes"}, "has_blocking_findings", id="bool-as-text"),
    pytest.param({"contract_type__in": "MSA"}, "contract_type__in", id="in-not-list"),
    pytest.param({"contract_type__in": []}, "contract_type__in", id="in-empty"),
    pytest.param({"value__range": [1]}, "value__range", id="range-one-item"),
    pytest.param({"contract_type__in": ["MSA"] * 501}, "contract_type__in", id="501-items"),
    pytest.param({f"metadata__k{i}": "x" for i in range(51)}, "metadata__k50", id="51-conditions"),
    pytest.param(
        {"all": [{"title__contains": f"t{i}"} for i in range(51)]},
        "all[50].title__contains",
        id="51-nested-conditions",
    ),
    pytest.param(
        {"not": {"not": {"not": {"not": {"not": {"not": {"title": "x"}}}}}}},
        "not.not.not.not.not.not",
        id="depth-6",
    ),
    pytest.param(
        {"any": [{"value__gte": 1}, {"created_by__is_superuser": True}]},
        "any[1].created_by__is_superuser",
        id="nested-relation",
    ),
    pytest.param({"any": []}, "any", id="empty-any"),
    pytest.param({"not": {}}, "not", id="empty-not"),
    pytest.param([{"value__gte": 1}], "JSON object", id="list-root"),
    pytest.param("value__gte", "JSON object", id="string-root"),
    pytest.param({"title": "a\x00b"}, "title", id="nul-in-value"),
    pytest.param({"title\x00": "a"}, "title", id="nul-in-key"),
    pytest.param({"title": "x" * 1001}, "title", id="long-string"),
    pytest.param({"value": 1, "contract_value__exact": 2}, "contract_value__exact", id="dupe"),
]


@pytest.mark.parametrize(("conditions", "needle"), INJECTIONS)
def test_unsafe_or_invalid_trigger_conditions_are_400(manager_client, conditions, needle):
    response = manager_client.post(URL, body(trigger_conditions=conditions), format="json")
    assert_validation_error(response, "trigger_conditions", needle)
    assert set(response.json()["fields"]) == {"trigger_conditions"}
    assert not WorkflowDefinition.objects.exists()


def test_invalid_trigger_conditions_on_patch_keep_the_definition(manager_client):
    created = create(manager_client, trigger_conditions={"value__gte": 5})
    response = manager_client.patch(
        detail_url(created["id"]), {"trigger_conditions": {"tenant__slug": "x"}}, format="json"
    )
    assert_validation_error(response, "trigger_conditions", "tenant__slug")
    stored = WorkflowDefinition.objects.get()
    assert stored.trigger_conditions == {"value__gte": 5}
    assert stored.version == 1


def test_valid_nested_trigger_conditions_are_stored(manager_client):
    conditions = {
        "contract_value__gte": "1000.50",
        "any": [{"contract_type__in": ["MSA", "SOW"]}, {"metadata__priority": "high"}],
        "not": {"region__istartswith": "eu"},
        "start_date__range": ["2025-01-01", "2025-12-31"],
    }
    created = create(manager_client, trigger_conditions=conditions)
    assert created["trigger_conditions"] == conditions


def _stages_over(n: int) -> list[dict]:
    return [stage(f"Stage {i}", sequence=i + 1) for i in range(n)]


STAGE_ERRORS = [
    pytest.param(lambda ctx: [], "stages", id="no-stages"),
    pytest.param(lambda ctx: _stages_over(21), "stages", id="21-stages"),
    pytest.param(lambda ctx: {"stage_name": "x"}, "stages", id="not-a-list"),
    pytest.param(lambda ctx: [stage(approvers=[])], "stages[0].approvers", id="no-approvers"),
    pytest.param(
        lambda ctx: [stage(), stage("Two", 2, approvers=["Legal Team"])],
        "stages[1].approvers",
        id="bad-slug",
    ),
    pytest.param(
        lambda ctx: [stage(), stage("Two", 2, approvers=[f"user:{ctx['stranger'].pk}"])],
        "stages[1].approvers",
        id="other-tenants-user",
    ),
    pytest.param(
        lambda ctx: [stage(), stage("Two", 2, approvers=[f"user:{uuid.uuid4()}"])],
        "stages[1].approvers",
        id="unknown-user",
    ),
    pytest.param(
        lambda ctx: [stage(approvers=["user:not-a-uuid"])],
        "stages[0].approvers",
        id="malformed-user",
    ),
    pytest.param(
        lambda ctx: [stage(approvers=["legal", "cfo"], approval_type="quorum")],
        "stages[0].min_approvals",
        id="quorum-without-min",
    ),
    pytest.param(
        lambda ctx: [stage(approvers=["legal", "cfo"], approval_type="quorum", min_approvals=3)],
        "stages[0].min_approvals",
        id="quorum-min-above-approvers",
    ),
    pytest.param(
        lambda ctx: [stage(approvers=["legal", "cfo"], approval_type="all", min_approvals=1)],
        "stages[0].min_approvals",
        id="min-on-all",
    ),
    pytest.param(
        lambda ctx: [stage(approvers=["legal"], approval_type="any", min_approvals=1)],
        "stages[0].min_approvals",
        id="min-on-any",
    ),
    pytest.param(
        lambda ctx: [stage("Legal"), stage("legal ", 2)],
        "stages[1].stage_name",
        id="duplicate-stage-names",
    ),
    pytest.param(
        lambda ctx: [stage(approvers=["legal", "LEGAL"])],
        "stages[0].approvers",
        id="duplicate-approvers",
    ),
    pytest.param(
        lambda ctx: [stage(approvers=[f"user:{ctx['member'].pk}", f"USER:{ctx['member'].pk}"])],
        "stages[0].approvers",
        id="duplicate-named-approvers",
    ),
    pytest.param(lambda ctx: [stage(sla_hours=0)], "stages[0].sla_hours", id="sla-0"),
    pytest.param(lambda ctx: [stage(sla_hours=9000)], "stages[0].sla_hours", id="sla-9000"),
    pytest.param(lambda ctx: [stage(sequence=0)], "stages[0].sequence", id="sequence-0"),
    pytest.param(
        lambda ctx: [stage(approval_type="most")], "stages[0].approval_type", id="bad-type"
    ),
    pytest.param(
        lambda ctx: [stage(approvers=[f"role{i}" for i in range(21)])],
        "stages[0].approvers",
        id="21-approvers",
    ),
]


@pytest.mark.parametrize(("make_stages", "key"), STAGE_ERRORS)
def test_invalid_stages_are_400(manager_client, tenant, other_tenant, make_stages, key):
    context = {"stranger": UserFactory(tenant=other_tenant), "member": UserFactory(tenant=tenant)}
    response = manager_client.post(URL, body(stages=make_stages(context)), format="json")
    assert response.status_code == 400, response.json()
    fields = response.json()["fields"]
    if key == "stages":
        assert fields, response.json()
        assert all(name.startswith("stages") for name in fields), fields
        assert not any(name.startswith("stages[") for name in fields), fields
    else:
        assert key in fields, fields
    assert not WorkflowDefinition.objects.exists()


def test_named_approver_of_another_tenant_is_named_in_the_message(manager_client, other_tenant):
    stranger = UserFactory(tenant=other_tenant)
    response = manager_client.post(
        URL, body(stages=[stage(approvers=["legal", f"user:{stranger.pk}"])]), format="json"
    )
    assert_validation_error(response, "stages[0].approvers", str(stranger.pk))


def test_inactive_named_user_is_rejected(manager_client, tenant):
    gone = UserFactory(tenant=tenant, is_active=False)
    response = manager_client.post(
        URL, body(stages=[stage(approvers=[f"user:{gone.pk}"])]), format="json"
    )
    assert_validation_error(response, "stages[0].approvers", str(gone.pk))


@pytest.mark.parametrize("depth", [100_000, 960, 900])
def test_deeply_nested_json_is_400_not_500(manager_client, depth):
    nested = "[" * depth + "]" * depth
    for raw in (nested, '{"name": "x", "stages": [], "trigger_conditions": ' + nested + "}"):
        response = manager_client.generic("POST", URL, raw, content_type="application/json")
        assert response.status_code == 400, response.content[:300]
        assert response["Content-Type"].startswith("application/json")
    deep_rule = '{"not": ' * depth + '{"title": "x"}' + "}" * depth
    raw = (
        '{"name": "x", "stages": [{"stage_name": "s", "sequence": 1, "approvers": ["legal"]}], '
        '"trigger_conditions": ' + deep_rule + "}"
    )
    response = manager_client.generic("POST", URL, raw, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert not WorkflowDefinition.objects.exists()


def test_non_finite_number_in_rules_is_400(manager_client):
    raw = (
        '{"name": "x", "stages": [{"stage_name": "s", "sequence": 1, "approvers": ["legal"]}], '
        '"trigger_conditions": {"value__gte": 1e400}}'
    )
    response = manager_client.generic("POST", URL, raw, content_type="application/json")
    assert_validation_error(response, "trigger_conditions")
    assert not WorkflowDefinition.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"priority": 10**7}, "priority"),
        ({"priority": "high"}, "priority"),
        ({"is_active": "maybe"}, "is_active"),
        ({"description": "d" * 2001}, "description"),
    ],
)
def test_invalid_top_level_fields_are_400(manager_client, overrides, key):
    assert_validation_error(manager_client.post(URL, body(**overrides), format="json"), key)
    assert not WorkflowDefinition.objects.exists()
