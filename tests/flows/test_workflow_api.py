"""The original design's example workflow, end to end through the API."""

import pytest

from approvals.models import WorkflowStageApproval
from audit.models import AuditLog
from tests.factories import UserFactory
from tests.fixtures import HIGH_VALUE

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(tenant, role_holder):
    return {
        "requester": UserFactory(tenant=tenant),
        "legal": role_holder("legal"),
        "finance": role_holder("finance"),
        "cfo": role_holder("cfo"),
        "ceo": role_holder("ceo"),
    }


@pytest.fixture
def definition(admin_client):
    response = admin_client.post("/api/workflows/config/", HIGH_VALUE, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def create_contract(client, **fields):
    body = {"title": "Big MSA", "contract_type": "MSA", "value": "600000", **fields}
    response = client.post("/api/contracts/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def act(client, contract_id, action="approve", **extra):
    return client.post(
        f"/api/contracts/{contract_id}/approve/", {"action": action, **extra}, format="json"
    )


def test_high_value_contract_runs_to_completion(api_client_for, people, definition):
    clients = {name: api_client_for(user) for name, user in people.items()}
    contract = create_contract(clients["requester"])
    assert contract["status"] == "in_review"
    assert contract["workflow"]["definition"] == {
        "id": definition["id"],
        "name": HIGH_VALUE["name"],
        "version": 1,
    }
    assert contract["workflow"]["current_stage"] == 1

    response = act(clients["legal"], contract["id"], comments="Looks fine")
    assert response.status_code == 200, response.json()
    status = response.json()
    assert status["current_stage"] == 2
    assert [stage["status"] for stage in status["stages"]] == ["approved", "pending", "waiting"]

    response = act(clients["cfo"], contract["id"])
    assert response.status_code == 200, response.json()
    finance = response.json()["stages"][1]
    assert sorted(row["status"] for row in finance["approvals"]) == ["approved", "skipped"]

    response = act(clients["ceo"], contract["id"])
    assert response.status_code == 200
    assert response.json()["status"] == "completed"
    detail = clients["requester"].get(f"/api/contracts/{contract['id']}/").json()
    assert detail["status"] == "approved"
    actions = list(AuditLog.objects.order_by("created_at").values_list("action", flat=True))
    assert actions.count("workflow_started") == 1
    assert actions.count("workflow_completed") == 1
    assert "approval_skipped" in actions


def test_rejection_at_required_stage_rejects(api_client_for, people, definition):
    contract = create_contract(api_client_for(people["requester"]))
    response = act(api_client_for(people["legal"]), contract["id"], "reject", comments="No")
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    detail = api_client_for(people["requester"]).get(f"/api/contracts/{contract['id']}/")
    assert detail.json()["status"] == "rejected"


def test_delegation_then_delegate_approves(api_client_for, people, definition, tenant):
    stand_in = UserFactory(tenant=tenant)
    contract = create_contract(api_client_for(people["requester"]))
    response = act(
        api_client_for(people["legal"]), contract["id"], "delegate", delegate_to=str(stand_in.pk)
    )
    assert response.status_code == 200, response.json()
    rows = response.json()["stages"][0]["approvals"]
    assert [row["status"] for row in rows] == ["delegated", "pending"]
    assert rows[1]["assigned_to"] == str(stand_in.pk)
    assert rows[1]["due_at"] == rows[0]["due_at"]
    assert act(api_client_for(people["legal"]), contract["id"]).status_code == 409
    assert act(api_client_for(stand_in), contract["id"]).json()["current_stage"] == 2


def test_creator_cannot_approve_and_outsider_is_403(api_client_for, people, definition, tenant):
    contract = create_contract(api_client_for(people["legal"]))
    assert act(api_client_for(people["legal"]), contract["id"]).status_code == 403
    assert act(api_client_for(people["ceo"]), contract["id"]).status_code == 403


def test_no_match_stays_draft(api_client_for, people, definition):
    contract = create_contract(api_client_for(people["requester"]), value="10")
    assert contract["status"] == "draft"
    assert contract["workflow"] is None
    assert WorkflowStageApproval.objects.count() == 0
