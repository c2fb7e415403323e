"""The approver's inbox lists only what they can decide now (docs/api.md, "Approvals")."""

import pytest

from contracts.services import contract_create
from tests.factories import UserFactory, UserRoleFactory
from workflows.services import definition_create

pytestmark = pytest.mark.django_db


def two_stage_flow(tenant, *, distinct_approvers=True):
    return definition_create(
        tenant=tenant,
        created_by=UserFactory(tenant=tenant),
        name=f"Two stages ({distinct_approvers})",
        distinct_approvers=distinct_approvers,
        stages=[
            {"stage_name": "Legal", "sequence": 1, "approvers": ["legal"]},
            {"stage_name": "Finance", "sequence": 2, "approvers": ["finance"]},
        ],
    )


def pending_stage_names(client) -> list[str]:
    response = client.get("/api/approvals/pending/")
    assert response.status_code == 200, response.content
    return [row["stage_name"] for row in response.json()["results"]]


@pytest.fixture
def both_roles(tenant):
    user = UserFactory(tenant=tenant)
    UserRoleFactory(user=user, role="legal")
    UserRoleFactory(user=user, role="finance")
    return user


@pytest.mark.parametrize("distinct", [True, False])
def test_a_second_row_of_a_workflow_is_listed_only_without_distinct_approvers(
    tenant, api_client_for, both_roles, distinct
):
    two_stage_flow(tenant, distinct_approvers=distinct)
    contract = contract_create(
        tenant=tenant, created_by=UserFactory(tenant=tenant), title="Inbox", contract_type="MSA"
    )
    client = api_client_for(both_roles)
    assert pending_stage_names(client) == ["Legal"]

    approved = client.post(f"/api/contracts/{contract.pk}/approve/", {"action": "approve"})
    assert approved.status_code == 200, approved.content

    assert pending_stage_names(client) == (["Finance"] if distinct is False else [])
    second = client.post(f"/api/contracts/{contract.pk}/approve/", {"action": "approve"})
    assert second.status_code == (200 if distinct is False else 403), second.content


def test_rows_of_a_contract_sent_back_leave_the_inbox_until_resubmitted(tenant, api_client_for):
    two_stage_flow(tenant)
    requester = UserFactory(tenant=tenant)
    contract = contract_create(
        tenant=tenant, created_by=requester, title="Sent back", contract_type="MSA"
    )
    legal = UserRoleFactory(user=UserFactory(tenant=tenant), role="legal").user
    other_legal = UserRoleFactory(user=UserFactory(tenant=tenant), role="legal").user
    assert pending_stage_names(api_client_for(other_legal)) == ["Legal"]

    sent_back = api_client_for(legal).post(
        f"/api/contracts/{contract.pk}/approve/",
        {"action": "request_changes", "comments": "Cap the liability."},
    )
    assert sent_back.status_code == 200, sent_back.content
    assert sent_back.json()["status"] == "changes_requested"
    assert pending_stage_names(api_client_for(other_legal)) == []

    resubmitted = api_client_for(requester).post(f"/api/contracts/{contract.pk}/resubmit/")
    assert resubmitted.status_code == 200, resubmitted.content
    assert pending_stage_names(api_client_for(other_legal)) == ["Legal"]
