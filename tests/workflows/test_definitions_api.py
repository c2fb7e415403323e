"""/api/workflows/config/: create, read, who may write, edits and versions, delete, audit."""

import copy
import uuid
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from audit.models import AuditLog
from core import rls
from tests.factories import UserFactory
from tests.fixtures import HIGH_VALUE, URL, assert_validation_error, body, create
from tests.fixtures import definitions_detail_url as detail_url
from tests.fixtures import definitions_stage as stage
from workflows.models import WorkflowDefinition, WorkflowDefinitionVersion

pytestmark = pytest.mark.django_db


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


def create_contract(client, **fields) -> dict:
    payload = {"title": "Big MSA", "contract_type": "MSA", "value": "600000", **fields}
    response = client.post("/api/contracts/", payload, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def status_of(client, contract_id) -> dict:
    response = client.get(f"/api/contracts/{contract_id}/workflow/status/")
    assert response.status_code == 200, response.json()
    return response.json()


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
