"""`manage.py seed_demo`: what `make run` shows a newcomer, and safe to run again."""

import io

import pytest
from django.core.management import call_command

from contracts.models import ClauseRule
from tenancy.models import Tenant, User
from workflows.management.commands.seed_demo import (
    DEMO_CLAUSES,
    DEMO_PASSWORD,
    DEMO_TENANT,
    DEMO_USERS,
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
    assert User.objects.filter(tenant=tenant).count() == len(DEMO_USERS)
    assert WorkflowDefinition.objects.filter(tenant=tenant).count() == 1
    assert sorted(
        ClauseRule.objects.filter(tenant=tenant).values_list("name", flat=True)
    ) == sorted(clause["name"] for clause in DEMO_CLAUSES)
    assert first == second
    assert DEMO_PASSWORD in first


def test_the_readme_example_routes_and_reports_clause_findings(api_client):
    seed()
    login = api_client.post(
        "/api/auth/token/",
        {"email": "requester@acme.example", "password": DEMO_PASSWORD},
        format="json",
    )
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {login.json()['access']}")

    response = api_client.post(
        "/api/contracts/",
        {
            "title": "Globex MSA",
            "contract_type": "MSA",
            "value": "750000.00",
            "counterparty": "Globex",
            "text": "The Supplier accepts unlimited liability.",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "in_review"
    assert body["workflow"]["definition"]["name"] == "High Value Contract Approval"
    assert body["has_blocking_findings"] is True
    assert body["clause_findings"]["missing_required"] != []
