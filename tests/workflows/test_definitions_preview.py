"""/api/workflows/config/preview-match/: which definition a contract would start; writes nothing."""

import uuid

import pytest

from approvals.models import WorkflowInstance, WorkflowStageApproval
from audit.models import AuditLog
from contracts.models import Contract
from tests.factories import ContractFactory, UserFactory
from tests.fixtures import HIGH_VALUE, URL, assert_validation_error, create
from tests.fixtures import definitions_detail_url as detail_url
from workflows.models import WorkflowDefinition, WorkflowDefinitionVersion

pytestmark = pytest.mark.django_db


PREVIEW = f"{URL}preview-match/"


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
