"""Query budgets: a list costs the same number of queries for 1 row as for 50 (no N+1).

A new list endpoint adds one line to LIST_ENDPOINTS: its URL, a maker adding `n` rows visible to
the caller (as varied as real data: different creators, roles, stages, so a missing
select_related/prefetch shows up), and the exact count measured for one row. The count includes
the JWT user lookup; when a change legitimately adds a query, update the number and say why.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest

from approvals import lifecycle as contract_services
from tenancy.models import Tenant, User
from tests.factories import ClauseRuleFactory, ContractFactory, UserFactory, UserRoleFactory
from workflows import services as workflow_services

pytestmark = pytest.mark.django_db

APPROVER_ROLE = "query-count-approver"
WORKFLOW_CONTRACT_TYPE = "QUERYCOUNT"


def add_contracts(tenant: Tenant, viewer: User, n: int) -> None:
    for _ in range(n):  # each with its own creator
        ContractFactory(created_by=UserFactory(tenant=tenant), metadata={"k": "v"})


def add_users(tenant: Tenant, viewer: User, n: int) -> None:
    for _ in range(n):
        UserRoleFactory(user=UserFactory(tenant=tenant), role="legal")


def add_roles(tenant: Tenant, viewer: User, n: int) -> None:
    for index in range(n):
        UserRoleFactory(
            user=UserFactory(tenant=tenant),
            role=f"role-{index}",
            permissions=["audit.view"],
            assigned_by=viewer,
        )


def _definition(tenant: Tenant, creator: User, stages: int = 2):
    return workflow_services.definition_create(
        tenant=tenant,
        created_by=creator,
        name=f"Budget {uuid.uuid4().hex[:8]}",
        trigger_conditions={"contract_type": WORKFLOW_CONTRACT_TYPE},
        stages=[
            {
                "stage_name": f"Stage {sequence}",
                "sequence": sequence,
                "approvers": [APPROVER_ROLE, "legal"],
                "approval_type": "any",
                "sla_hours": 24,
                "is_required": True,
            }
            for sequence in range(1, stages + 1)
        ],
    )


def add_definitions(tenant: Tenant, viewer: User, n: int) -> None:
    for _ in range(n):
        _definition(tenant, UserFactory(tenant=tenant), stages=3)


def add_contracts_in_review(tenant: Tenant, viewer: User, n: int) -> None:
    """Contracts with active workflows: each brings approvals for the viewer's role."""
    _definition(tenant, viewer)
    for index in range(n):
        contract_services.contract_create(
            tenant=tenant,
            created_by=UserFactory(tenant=tenant),
            title=f"In review {index}",
            contract_type=WORKFLOW_CONTRACT_TYPE,
            value=Decimal("1000.00"),
        )


@dataclass(frozen=True)
class ListEndpoint:
    url: str
    add_rows: Callable[[Tenant, User, int], None]
    queries: int

    def __str__(self) -> str:
        return self.url


LIST_ENDPOINTS = [
    # user, COUNT, page (creator joined), workflow instances with their version (one prefetch)
    ListEndpoint("/api/contracts/", add_contracts, 4),
    # user, COUNT, page
    ListEndpoint("/api/admin/users/", add_users, 3),
    # user, COUNT, page
    ListEndpoint("/api/admin/users/roles/", add_roles, 3),
    # user, COUNT, page, stages (prefetch)
    ListEndpoint("/api/workflows/config/", add_definitions, 4),
    # user, whether an out-of-office window must hand rows to a cover first, the caller's roles,
    # COUNT, page (approvals with stage and contract joined)
    ListEndpoint("/api/approvals/", add_contracts_in_review, 5),
    ListEndpoint("/api/approvals/pending/", add_contracts_in_review, 5),
    # user, COUNT, page (creator joined)
    ListEndpoint(
        "/api/admin/clauses/",
        lambda tenant, viewer, n: [  # each with its own creator
            ClauseRuleFactory(tenant=tenant, created_by=UserFactory(tenant=tenant))
            for _ in range(n)
        ],
        3,
    ),
]


@pytest.fixture
def viewer(tenant):
    """A tenant admin who also holds the approver role the workflow makers use."""
    admin = UserFactory(tenant=tenant, is_tenant_admin=True)
    UserRoleFactory(user=admin, role=APPROVER_ROLE)
    return admin


@pytest.mark.parametrize("endpoint", LIST_ENDPOINTS, ids=str)
def test_list_query_count_does_not_grow_with_rows(
    api_client_for, django_assert_num_queries, tenant, viewer, endpoint
):
    client = api_client_for(viewer)

    endpoint.add_rows(tenant, viewer, 1)
    with django_assert_num_queries(endpoint.queries):
        response = client.get(endpoint.url)
    assert response.status_code == 200, response.content
    assert 1 <= len(response.json()["results"]) <= 3

    endpoint.add_rows(tenant, viewer, 49)
    with django_assert_num_queries(endpoint.queries):
        response = client.get(endpoint.url)
    assert response.status_code == 200
    assert len(response.json()["results"]) == 50  # a full page was rendered


def test_contract_list_with_workflows_has_the_same_count(
    api_client_for, django_assert_num_queries, tenant, viewer
):
    """Contracts embed their workflow summary: prefetched, not one query per contract."""
    client = api_client_for(viewer)
    add_contracts_in_review(tenant, viewer, 50)
    # user, COUNT, page, workflow instances with their definition version (one prefetch)
    with django_assert_num_queries(4):
        response = client.get("/api/contracts/")
    results = response.json()["results"]
    assert len(results) == 50
    assert all(row["workflow"]["status"] == "active" for row in results)


def test_me_query_count(api_client_for, django_assert_num_queries, tenant):
    user = UserFactory(tenant=tenant)
    for role in ("legal", "finance", "cfo"):
        UserRoleFactory(user=user, role=role)
    client = api_client_for(user)
    # user with its tenant (one join), the user's active roles
    with django_assert_num_queries(2):
        response = client.get("/api/auth/me/")
    assert response.json()["roles"] == ["cfo", "finance", "legal"]


CONTRACT_BODY = {"title": "Budgeted", "contract_type": "NDA", "value": "10.00"}


def test_contract_create_without_a_match_query_count(
    api_client_for, django_assert_num_queries, tenant, viewer
):
    client = api_client_for(viewer)
    # user; SAVEPOINT, clause-library lookup (one query for the tenant's playbook), INSERT
    # contract, INSERT audit, match-engine lookup, RELEASE. The response's workflow summary
    # reads nothing: the service says no workflow started. (Savepoints are counted because each
    # test runs in a transaction; in production they are BEGIN/COMMIT.)
    # The contract's revision 1 travels with the contract's INSERT.
    with django_assert_num_queries(7):
        response = client.post("/api/contracts/", CONTRACT_BODY, format="json")
    assert response.status_code == 201
    assert response.json()["workflow"] is None


@pytest.mark.parametrize("stages", [1, 5])
def test_contract_create_starting_a_workflow_query_count(
    api_client_for, django_assert_num_queries, tenant, viewer, stages
):
    """Starting a workflow costs the same whatever the number of stages."""
    _definition(tenant, viewer, stages=stages)
    for _ in range(5):  # holders of the first stage's roles get notified
        UserRoleFactory(user=UserFactory(tenant=tenant), role="legal")
    UserRoleFactory(user=UserFactory(tenant=tenant), role=APPROVER_ROLE)
    client = api_client_for(viewer)
    # Round trips (the writes queued by core.pipeline travel with the next statement and
    # are not logged on their own): the JWT user, clause rules and active definitions (the match
    # is evaluated in Python on the unsaved contract), the definition's current version
    # (share-locked) with the roles of its stages someone but the creator holds, then the end
    # of the transaction (the RELEASE of its savepoint here, the COMMIT in production) carrying
    # every write of the start (revision 1, contract already in review, instance, stages,
    # approvals, one bulk audit INSERT), the listeners' savepoint and the statement inserting
    # the notifications with their email and webhook deliveries. 6 in all, once this process
    # has compiled the definition's rules and loaded the tenant's SLA policy (the first create:
    # +2). The response's workflow summary is the instance the service started: no read.
    body = {**CONTRACT_BODY, "contract_type": WORKFLOW_CONTRACT_TYPE}
    assert client.post("/api/contracts/", body, format="json").status_code == 201
    with django_assert_num_queries(6):
        response = client.post(
            "/api/contracts/",
            {**CONTRACT_BODY, "contract_type": WORKFLOW_CONTRACT_TYPE},
            format="json",
        )
    assert response.status_code == 201
    assert response.json()["workflow"]["status"] == "active"


@pytest.mark.parametrize("stages", [1, 5])
def test_workflow_status_query_count(
    api_client_for, django_assert_num_queries, tenant, viewer, stages
):
    _definition(tenant, viewer, stages=stages)
    contract = contract_services.contract_create(
        tenant=tenant,
        created_by=UserFactory(tenant=tenant),
        title="Status",
        contract_type=WORKFLOW_CONTRACT_TYPE,
    )
    client = api_client_for(viewer)
    # user, the contract's existence in the tenant, instance with its version, stages with their
    # approvals (5 while the ORM read stages and approvals apart)
    with django_assert_num_queries(4):
        response = client.get(f"/api/contracts/{contract.pk}/workflow/status/")
    assert response.status_code == 200
    assert len(response.json()["stages"]) == stages
