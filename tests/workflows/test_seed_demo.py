"""`manage.py seed_demo`: what `make run` shows a newcomer, and safe to run again."""

import io
import json
import re

import pytest
from django.core.management import call_command

from contracts.models import ClauseRule
from core import rls
from tenancy.models import Tenant, User
from tests.support import ROOT
from workflows.management.commands.seed_demo import (
    DEMO_CLAUSES,
    DEMO_DEVIATION_WORKFLOW,
    DEMO_PASSWORD,
    DEMO_TENANT,
    DEMO_USERS,
    DEMO_WORKFLOWS,
)
from workflows.models import WorkflowDefinition

pytestmark = pytest.mark.django_db


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seeding_twice_gives_one_demo_tenant_with_everything_once():
    first, second = seed(), seed()

    tenant = Tenant.objects.get(slug=DEMO_TENANT["slug"])
    with rls.tenant_scope(tenant):
        assert User.objects.filter(tenant=tenant).count() == len(DEMO_USERS)
        assert sorted(
            WorkflowDefinition.objects.filter(tenant=tenant).values_list("name", flat=True)
        ) == sorted(workflow["name"] for workflow in DEMO_WORKFLOWS)
        assert sorted(
            ClauseRule.objects.filter(tenant=tenant).values_list("name", flat=True)
        ) == sorted(clause["name"] for clause in DEMO_CLAUSES)
    assert first == second
    assert DEMO_PASSWORD in first


def requester_client(api_client):
    login = api_client.post(
        "/api/auth/token/",
        {"email": "requester@acme.example", "password": DEMO_PASSWORD},
        format="json",
    )
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {login.json()['access']}")
    return api_client


GLOBEX_MSA = {"title": "Globex MSA", "contract_type": "MSA", "value": "750000.00"}


def test_the_readme_example_routes_to_the_high_value_workflow(api_client):
    seed()

    response = requester_client(api_client).post(
        "/api/contracts/", {**GLOBEX_MSA, "counterparty": "Globex"}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "in_review"
    assert body["workflow"]["definition"]["name"] == "High Value Contract Approval"
    assert body["has_blocking_findings"] is False


def test_a_contract_breaking_the_playbook_routes_to_legal_deviation_review(api_client):
    """Issue 15: the "Legal deviation review" of docs/api.md had to be created by hand."""
    seed()

    response = requester_client(api_client).post(
        "/api/contracts/",
        {**GLOBEX_MSA, "text": "The Supplier accepts unlimited liability."},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "in_review"
    assert body["workflow"]["definition"]["name"] == "Legal deviation review"
    assert body["has_blocking_findings"] is True
    assert body["clause_findings"]["missing_required"] != []


def test_the_deviation_workflow_is_the_one_the_api_reference_shows():
    reference = (ROOT / "docs" / "api.md").read_text()
    blocks = re.findall(r"^```json\n(.*?)^```", reference, re.MULTILINE | re.DOTALL)
    [shown] = [json.loads(block) for block in blocks if '"Legal deviation review"' in block]

    assert shown == DEMO_DEVIATION_WORKFLOW
