"""Fixtures for the documents tests: a workflow run to completion through the API, the worker."""

import pytest

from tests.factories import UserFactory

TWO_STAGES = {
    "name": "Two-step approval",
    "trigger_conditions": {"contract_type": "MSA"},
    "stages": [
        {"stage_name": "Legal Review", "sequence": 1, "approvers": ["legal"], "sla_hours": 48},
        {
            "stage_name": "Finance Approval",
            "sequence": 2,
            "approvers": ["finance", "cfo"],
            "approval_type": "any",
        },
    ],
}


@pytest.fixture(autouse=True)
def documents_dir(settings, tmp_path):
    """Each test stores its PDFs in its own directory."""
    settings.STORAGES = {
        **settings.STORAGES,
        "documents": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "documents")},
        },
    }
    return tmp_path / "documents"


@pytest.fixture
def people(tenant, role_holder):
    return {
        "requester": UserFactory(tenant=tenant, full_name="Rita Requester"),
        "legal": role_holder("legal"),
        "finance": role_holder("finance"),
    }


@pytest.fixture
def clients(api_client_for, people):
    return {name: api_client_for(user) for name, user in people.items()}


@pytest.fixture
def definition(admin_client):
    response = admin_client.post("/api/workflows/config/", TWO_STAGES, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def approve(client, contract_id, **extra):
    response = client.post(
        f"/api/contracts/{contract_id}/approve/", {"action": "approve", **extra}, format="json"
    )
    assert response.status_code == 200, response.json()
    return response.json()


@pytest.fixture
def approved_contract(clients, definition):
    """A contract whose two-stage workflow completed through the API (no worker run yet)."""
    response = clients["requester"].post(
        "/api/contracts/",
        {
            "title": "Zürich MSA",
            "contract_type": "MSA",
            "value": "125000",
            "counterparty": "Globex AG",
            "text": "The parties agree to the terms below.\nClause 1: payment within 30 days.",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    contract = response.json()
    approve(clients["legal"], contract["id"], comments="Liability cap checked")
    status = approve(clients["finance"], contract["id"], comments="Budget OK")
    assert status["status"] == "completed"
    return clients["requester"].get(f"/api/contracts/{contract['id']}/").json()
