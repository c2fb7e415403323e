"""/api/workflows/config/: CRUD, versioning, validation and preview-match, through the real API."""

import copy
import uuid
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from approvals.models import WorkflowInstance, WorkflowStageApproval
from audit.models import AuditLog
from contracts.models import Contract
from core import rls
from tests.factories import ContractFactory, UserFactory
from tests.fixtures import HIGH_VALUE
from workflows.models import WorkflowDefinition, WorkflowDefinitionVersion

pytestmark = pytest.mark.django_db

URL = "/api/workflows/config/"
PREVIEW = f"{URL}preview-match/"
RESPONSE_KEYS = {
    "id",
    "name",
    "signers",
    "signing_order",
    "description",
    "trigger_conditions",
    "stages",
    "priority",
    "is_active",
    "distinct_approvers",
    "version",
    "created_by",
    "created_at",
    "updated_at",
}


def stage(name="Legal Review", sequence=1, approvers=("legal",), **extra) -> dict:
    return {"stage_name": name, "sequence": sequence, "approvers": list(approvers), **extra}


def body(name="Catch-all", **overrides) -> dict:
    return {"name": name, "trigger_conditions": {}, "stages": [stage()], **overrides}


def detail_url(definition_id) -> str:
    return f"{URL}{definition_id}/"


def create(client, **overrides) -> dict:
    response = client.post(URL, body(**overrides), format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def create_contract(client, **fields) -> dict:
    payload = {"title": "Big MSA", "contract_type": "MSA", "value": "600000", **fields}
    response = client.post("/api/contracts/", payload, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def status_of(client, contract_id) -> dict:
    response = client.get(f"/api/contracts/{contract_id}/workflow/status/")
    assert response.status_code == 200, response.json()
    return response.json()


def assert_validation_error(response, key: str, *needles: str) -> str:
    """400 in the standard shape, with `key` among the fields; returns its joined messages."""
    assert response.status_code == 400, response.content[:500]
    error = response.json()
    assert error["code"] == "validation_error", error
    assert key in error["fields"], error
    message = " ".join(error["fields"][key])
    for needle in needles:
        assert needle in message, (needle, message)
    return message


def table_counts() -> dict:
    return {
        model.__name__: model.objects.count()
        for model in (
            Contract,
            WorkflowDefinition,
            WorkflowDefinitionVersion,
            WorkflowInstance,
            WorkflowStageApproval,
            AuditLog,
        )
    }


@pytest.fixture
def manager(role_holder):
    """A non-admin holding a role that grants `workflows.manage`."""
    return role_holder("workflow-admin", permissions=["workflows.manage"])


@pytest.fixture
def manager_client(api_client_for, manager):
    return api_client_for(manager)


@pytest.fixture
def requester(tenant):
    return UserFactory(tenant=tenant)


# --- create and read ------------------------------------------------------------------------


def test_create_returns_the_definition_with_server_fields(admin_client, tenant_admin):
    sent = copy.deepcopy(HIGH_VALUE)
    # Read-only fields in the body are ignored.
    sent.update(id=str(uuid.uuid4()), version=7, created_by="someone else")
    before = timezone.now()
    response = admin_client.post(URL, sent, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert set(created) == RESPONSE_KEYS
    assert created["id"] != sent["id"]
    assert uuid.UUID(created["id"])
    assert created["version"] == 1
    assert created["created_by"] == f"{tenant_admin.full_name} <{tenant_admin.email}>"
    for stamp in ("created_at", "updated_at"):
        moment = datetime.fromisoformat(created[stamp])
        assert moment.tzinfo is not None
        assert before - timedelta(seconds=5) <= moment <= timezone.now()
    for key in ("name", "description", "trigger_conditions", "priority", "is_active"):
        assert created[key] == HIGH_VALUE[key]
    assert created["stages"] == [
        {**item, "min_approvals": None, "reset_on_change": "any"} for item in HIGH_VALUE["stages"]
    ]
    assert created["distinct_approvers"] is True
    assert WorkflowDefinition.objects.get().version == 1
    assert WorkflowDefinitionVersion.objects.get().version == 1


def test_create_normalizes_stages(admin_client, tenant, role_holder):
    named = role_holder("counsel")
    response = admin_client.post(
        URL,
        {
            "name": "Normalized",
            "stages": [
                {"stage_name": "  Sign-off ", "sequence": 3, "approvers": ["CEO"]},
                {
                    "stage_name": "Review",
                    "sequence": 1,
                    "approvers": [" Legal ", f"USER:{str(named.pk).upper()}"],
                    "approval_type": "quorum",
                    "min_approvals": 1,
                },
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["trigger_conditions"] == {}
    assert created["priority"] == 0
    assert created["is_active"] is True
    assert created["description"] == ""
    assert created["stages"] == [
        {
            "stage_name": "Review",
            "sequence": 1,
            "approvers": ["legal", f"user:{named.pk}"],
            "approval_type": "quorum",
            "min_approvals": 1,
            "sla_hours": None,
            "is_required": True,
            "reset_on_change": "any",
        },
        {
            "stage_name": "Sign-off",
            "sequence": 3,
            "approvers": ["ceo"],
            "approval_type": "all",
            "min_approvals": None,
            "sla_hours": None,
            "is_required": True,
            "reset_on_change": "any",
        },
    ]
    # The detail read echoes exactly what the create returned.
    assert admin_client.get(detail_url(created["id"])).json() == created


def test_any_member_may_list_and_read(admin_client, client, other_tenant, api_client_for):
    mine = create(admin_client, name="Mine", priority=5)
    stranger_admin = UserFactory(tenant=other_tenant, is_tenant_admin=True)
    theirs = create(api_client_for(stranger_admin), name="Theirs")

    listed = client.get(URL)
    assert listed.status_code == 200
    page = listed.json()
    assert page["count"] == 1
    assert [row["id"] for row in page["results"]] == [mine["id"]]
    assert page["results"][0] == mine

    assert client.get(detail_url(mine["id"])).json() == mine
    # Another tenant's definition is a 404, for reads and writes alike.
    assert client.get(detail_url(theirs["id"])).status_code == 404
    assert admin_client.patch(detail_url(theirs["id"]), {"priority": 1}).status_code == 404
    assert admin_client.delete(detail_url(theirs["id"])).status_code == 404
    with rls.tenant_scope(other_tenant):
        assert WorkflowDefinition.objects.get(pk=theirs["id"]).priority == 0


def test_writing_needs_workflows_manage(client, manager_client, role_holder, api_client_for):
    assert client.post(URL, body(), format="json").status_code == 403
    assert WorkflowDefinition.objects.count() == 0

    created = create(manager_client)
    url = detail_url(created["id"])
    assert client.patch(url, {"priority": 9}, format="json").status_code == 403
    assert client.put(url, body(priority=9), format="json").status_code == 403
    assert client.delete(url).status_code == 403
    # Another capability does not help, nor does an expired workflows.manage role.
    other_capability = api_client_for(role_holder("sla-admin", permissions=["sla.manage"]))
    assert other_capability.patch(url, {"priority": 9}, format="json").status_code == 403
    expired = api_client_for(
        role_holder(
            "former-admin",
            permissions=["workflows.manage"],
            expires_at=timezone.now() - timedelta(minutes=1),
        )
    )
    assert expired.patch(url, {"priority": 9}, format="json").status_code == 403
    assert expired.get(url).status_code == 200
    assert WorkflowDefinition.objects.get().priority == 0

    response = manager_client.patch(url, {"priority": 9}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["priority"] == 9
    assert manager_client.delete(url).status_code == 204


# --- editing and versions -------------------------------------------------------------------


def test_edits_bump_version_and_running_instances_keep_theirs(
    manager_client, api_client_for, requester, role_holder
):
    legal, finance, ceo = role_holder("legal"), role_holder("finance"), role_holder("ceo")
    created = create(manager_client, name="Flow", stages=[stage("Legal Review")])
    requester_client = api_client_for(requester)
    first = create_contract(requester_client)
    assert first["workflow"]["definition"]["version"] == 1

    patched = manager_client.patch(
        detail_url(created["id"]),
        {"stages": [stage("Finance Approval", approvers=["finance"])]},
        format="json",
    )
    assert patched.status_code == 200, patched.json()
    assert patched.json()["version"] == 2
    assert [item["stage_name"] for item in patched.json()["stages"]] == ["Finance Approval"]

    # The running instance still shows v1 and its old stage.
    running = status_of(requester_client, first["id"])
    assert running["definition"] == {"id": created["id"], "name": "Flow", "version": 1}
    assert [item["stage_name"] for item in running["stages"]] == ["Legal Review"]
    assert running["stages"][0]["approvals"][0]["approver"] == "legal"

    second = create_contract(requester_client)
    assert second["workflow"]["definition"] == {"id": created["id"], "name": "Flow", "version": 2}
    assert [item["stage_name"] for item in status_of(requester_client, second["id"])["stages"]] == [
        "Finance Approval"
    ]

    put = manager_client.put(
        detail_url(created["id"]),
        body(name="Flow renamed", stages=[stage("Exec", approvers=["ceo"])], priority=3),
        format="json",
    )
    assert put.status_code == 200, put.json()
    assert put.json()["version"] == 3
    assert put.json()["name"] == "Flow renamed"
    # A running instance keeps the name of the version it started on.
    assert status_of(requester_client, first["id"])["definition"]["name"] == "Flow"
    third = create_contract(requester_client)
    assert third["workflow"]["definition"] == {
        "id": created["id"],
        "name": "Flow renamed",
        "version": 3,
    }
    # Each instance runs to completion on its own version's stages.
    for contract, approver in ((first, legal), (second, finance), (third, ceo)):
        response = api_client_for(approver).post(
            f"/api/contracts/{contract['id']}/approve/", {"action": "approve"}, format="json"
        )
        assert response.status_code == 200, response.json()
        assert response.json()["status"] == "completed"
    assert sorted(
        WorkflowDefinitionVersion.objects.filter(definition_id=created["id"]).values_list(
            "version", flat=True
        )
    ) == [1, 2, 3]


def test_edit_without_change_keeps_the_version(manager_client):
    sent = body(name="Stable", trigger_conditions={"value__gte": 10}, priority=4)
    response = manager_client.post(URL, sent, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    url = detail_url(created["id"])
    for patch in ({}, {"name": "Stable"}, {"stages": sent["stages"], "priority": 4}):
        response = manager_client.patch(url, patch, format="json")
        assert response.status_code == 200, response.json()
        assert response.json()["version"] == 1
    response = manager_client.put(url, sent, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["version"] == 1
    assert not AuditLog.objects.filter(action="workflow_definition_updated").exists()

    response = manager_client.patch(url, {"is_active": False}, format="json")
    assert response.json()["version"] == 2
    assert response.json()["is_active"] is False


def test_patch_with_an_incomplete_stage_is_400(manager_client):
    created = create(manager_client)
    url = detail_url(created["id"])
    response = manager_client.patch(url, {"stages": [{"approvers": ["legal"]}]}, format="json")
    assert_validation_error(response, "stages[0].stage_name")
    response = manager_client.patch(
        url, {"stages": [stage(), {"stage_name": "Second", "approvers": ["cfo"]}]}, format="json"
    )
    assert_validation_error(response, "stages[1].sequence")
    # Defaults still apply to a PATCHed stage.
    response = manager_client.patch(url, {"stages": [stage("Only")]}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["stages"][0]["approval_type"] == "all"
    assert response.json()["stages"][0]["is_required"] is True
    assert response.json()["version"] == 2


def test_duplicate_name_is_400(manager_client):
    create(manager_client, name="Same")
    response = manager_client.post(URL, body(name="Same"), format="json")
    assert_validation_error(response, "name", "already exists")
    other = create(manager_client, name="Other")
    response = manager_client.patch(detail_url(other["id"]), {"name": "Same"}, format="json")
    assert_validation_error(response, "name", "already exists")
    assert sorted(WorkflowDefinition.objects.values_list("name", flat=True)) == ["Other", "Same"]
    assert WorkflowDefinition.objects.get(name="Other").version == 1


def test_delete_of_an_unused_definition_deletes_it(manager_client, manager):
    created = create(manager_client)
    response = manager_client.delete(detail_url(created["id"]))
    assert response.status_code == 204
    assert manager_client.get(detail_url(created["id"])).status_code == 404
    assert not WorkflowDefinition.objects.exists()
    assert not WorkflowDefinitionVersion.objects.exists()
    row = AuditLog.objects.get(action="workflow_definition_deleted")
    assert row.resource_id == created["id"]
    assert row.actor_id == manager.pk


def test_delete_of_a_used_definition_only_deactivates(
    manager_client, api_client_for, requester, role_holder
):
    legal = role_holder("legal")
    created = create(manager_client)
    requester_client = api_client_for(requester)
    contract = create_contract(requester_client)
    response = manager_client.delete(detail_url(created["id"]))
    assert response.status_code == 204
    kept = manager_client.get(detail_url(created["id"]))
    assert kept.status_code == 200
    assert kept.json()["is_active"] is False
    # The running instance goes on; new contracts no longer match.
    assert status_of(requester_client, contract["id"])["status"] == "active"
    assert create_contract(requester_client)["workflow"] is None
    response = api_client_for(legal).post(
        f"/api/contracts/{contract['id']}/approve/", {"action": "approve"}, format="json"
    )
    assert response.json()["status"] == "completed"


def test_writes_are_audited(manager_client, manager):
    created = create(manager_client, name="Audited")
    manager_client.patch(detail_url(created["id"]), {"priority": 7}, format="json")
    manager_client.delete(detail_url(created["id"]))
    rows = list(AuditLog.objects.filter(resource_id=created["id"]).order_by("created_at", "action"))
    assert [row.action for row in rows] == [
        "workflow_definition_created",
        "workflow_definition_updated",
        "workflow_definition_deleted",
    ]
    assert {row.actor_id for row in rows} == {manager.pk}
    assert {row.resource_type for row in rows} == {"workflowdefinition"}
    assert rows[0].changes["name"] == [None, "Audited"]
    assert rows[1].changes["priority"] == [0, 7]
    assert rows[1].changes["version"] == [1, 2]


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


# --- preview-match --------------------------------------------------------------------------


def preview(client, payload) -> dict:
    response = client.post(PREVIEW, payload, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def test_preview_match_with_fields_and_with_a_contract_writes_nothing(manager_client, client, user):
    high = create(
        manager_client,
        name="High value",
        trigger_conditions=HIGH_VALUE["trigger_conditions"],
        priority=100,
    )
    eu = create(
        manager_client,
        name="EU",
        trigger_conditions={"metadata__zone": "EU", "value__lt": 500000},
        priority=50,
    )
    big = ContractFactory(created_by=user, contract_type="SOW", value="750000.00")
    small = ContractFactory(created_by=user, contract_type="NDA", value="10.00")
    before = table_counts()

    assert preview(client, {"contract_type": "MSA", "value": "600000"}) == {
        "matched": {"id": high["id"], "name": "High value", "priority": 100}
    }
    assert preview(client, {"contract_type": "MSA", "value": 499999.99}) == {"matched": None}
    assert preview(client, {"value": 10, "metadata": {"zone": "EU"}})["matched"]["id"] == eu["id"]
    assert preview(client, {"value": 10, "metadata": {"zone": "US"}}) == {"matched": None}
    assert preview(client, {"contract": str(big.pk)})["matched"]["id"] == high["id"]
    assert preview(client, {"contract": str(small.pk)}) == {"matched": None}
    assert preview(client, {}) == {"matched": None}

    assert table_counts() == before
    big.refresh_from_db()
    assert big.status == "draft"


def test_preview_match_rejects_another_tenants_contract(manager_client, client, other_tenant):
    create(manager_client)
    theirs = ContractFactory(created_by=UserFactory(tenant=other_tenant))
    response = client.post(PREVIEW, {"contract": str(theirs.pk)}, format="json")
    assert_validation_error(response, "contract")
    response = client.post(PREVIEW, {"contract": str(uuid.uuid4())}, format="json")
    assert_validation_error(response, "contract")


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        ({"value": "abc"}, "value"),
        ({"value": 10**20}, "value"),
        ({"metadata": ["x"]}, "metadata"),
        ({"metadata": {"a": "b\x00"}}, "metadata"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"contract": "not-a-uuid"}, "contract"),
    ],
)
def test_preview_match_validates_its_input(client, payload, key):
    assert_validation_error(client.post(PREVIEW, payload, format="json"), key)


def test_preview_priority_ties_inactive_and_other_tenants(
    manager_client, client, other_tenant, api_client_for
):
    low = create(manager_client, name="Low", priority=1)
    assert preview(client, {"title": "x"})["matched"]["id"] == low["id"]
    older = create(manager_client, name="Older tie", priority=10)
    create(manager_client, name="Newer tie", priority=10)
    assert preview(client, {"title": "x"})["matched"] == {
        "id": older["id"],
        "name": "Older tie",
        "priority": 10,
    }
    top = create(manager_client, name="Top but inactive", priority=1000, is_active=False)
    stranger_admin = UserFactory(tenant=other_tenant, is_tenant_admin=True)
    create(api_client_for(stranger_admin), name="Theirs", priority=999_999)
    assert preview(client, {"title": "x"})["matched"]["id"] == older["id"]

    # Activating it makes it win; lowering its priority below the tie hands it back.
    manager_client.patch(detail_url(top["id"]), {"is_active": True}, format="json")
    assert preview(client, {"title": "x"})["matched"]["id"] == top["id"]
    manager_client.patch(detail_url(top["id"]), {"priority": 5}, format="json")
    assert preview(client, {"title": "x"})["matched"]["id"] == older["id"]
    # The older tie deactivated: the newer one takes over.
    manager_client.patch(detail_url(older["id"]), {"is_active": False}, format="json")
    assert preview(client, {"title": "x"})["matched"]["name"] == "Newer tie"


def test_preview_reflects_edited_rules_at_once(manager_client, client):
    created = create(manager_client, trigger_conditions={"contract_type": "NDA"})
    assert preview(client, {"contract_type": "NDA"})["matched"]["id"] == created["id"]
    manager_client.patch(
        detail_url(created["id"]), {"trigger_conditions": {"contract_type": "MSA"}}, format="json"
    )
    assert preview(client, {"contract_type": "NDA"}) == {"matched": None}
    assert preview(client, {"contract_type": "MSA"})["matched"]["id"] == created["id"]
