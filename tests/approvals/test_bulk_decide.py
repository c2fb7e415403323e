"""POST /api/approvals/bulk/: up to 100 approvals in one request, each in its own transaction."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals import lifecycle as contract_services
from approvals.models import ApprovalStatus, WorkflowStageApproval
from audit.models import AuditLog
from core import rls
from tests.factories import TenantFactory, UserFactory, UserRoleFactory
from tests.fixtures import make_definition

pytestmark = pytest.mark.django_db

URL = "/api/approvals/bulk/"


def waiting_rows(tenant, count: int) -> list[WorkflowStageApproval]:
    """``count`` contracts waiting at their legal stage: their legal rows."""
    creator = UserFactory(tenant=tenant)
    with rls.tenant_scope(tenant):
        contracts = [
            contract_services.contract_create(
                tenant=tenant, created_by=creator, title=f"Contract {n}", contract_type="NOTIFY"
            )
            for n in range(count)
        ]
        return list(
            WorkflowStageApproval.objects.filter(contract__in=contracts, role="legal").order_by(
                "created_at", "id"
            )
        )


@pytest.fixture
def legal(tenant, role_holder):
    make_definition(tenant)
    return role_holder("legal")


@pytest.fixture
def legal_client(api_client_for, legal):
    return api_client_for(legal)


def ids(rows) -> list[str]:
    return [str(row.pk) for row in rows]


def test_approves_every_row_and_reports_each(legal_client, legal, tenant):
    rows = waiting_rows(tenant, 3)

    response = legal_client.post(URL, {"action": "approve", "approvals": ids(rows)})

    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {"approval": str(row.pk), "status_code": 200, "detail": "Approved."} for row in rows
        ]
    }
    for row in rows:
        row.refresh_from_db()
        assert (row.status, row.decided_by_id) == (ApprovalStatus.APPROVED, legal.pk)
    assert AuditLog.objects.filter(action="approval_approved", actor=legal).count() == 3


def test_reject_carries_the_comments(legal_client, tenant):
    rows = waiting_rows(tenant, 2)

    response = legal_client.post(
        URL, {"action": "reject", "approvals": ids(rows), "comments": "Out of budget."}
    )

    assert [result["status_code"] for result in response.json()["results"]] == [200, 200]
    for row in rows:
        row.refresh_from_db()
        assert (row.status, row.comments) == (ApprovalStatus.REJECTED, "Out of budget.")


def test_each_row_succeeds_or_fails_on_its_own(legal_client, legal, tenant, api_client_for):
    mine, decided = waiting_rows(tenant, 2)
    legal_client.post(URL, {"action": "approve", "approvals": [str(decided.pk)]})
    finance_row = WorkflowStageApproval.objects.get(contract=decided.contract, role="finance")
    other_tenant = TenantFactory()
    make_definition(other_tenant)
    [foreign] = waiting_rows(other_tenant, 1)
    unknown = uuid.uuid4()

    response = legal_client.post(
        URL,
        {
            "action": "approve",
            "approvals": [
                str(decided.pk),
                str(finance_row.pk),
                str(foreign.pk),
                str(unknown),
                str(mine.pk),
            ],
        },
    )

    assert response.status_code == 200
    results = response.json()["results"]
    assert [result["status_code"] for result in results] == [409, 403, 404, 404, 200]
    assert results[0]["detail"] == "That approval is no longer pending."
    assert "not an eligible approver" in results[1]["detail"]
    mine.refresh_from_db()
    finance_row.refresh_from_db()
    with rls.bypass("the other tenant's row, untouched"):
        foreign.refresh_from_db()
    assert mine.status == ApprovalStatus.APPROVED
    assert finance_row.status == foreign.status == ApprovalStatus.PENDING


def test_the_contracts_creator_is_refused_per_row(api_client_for, tenant, legal):
    [row] = waiting_rows(tenant, 1)
    UserRoleFactory(user=row.contract.created_by, role="legal")

    response = api_client_for(row.contract.created_by).post(
        URL, {"action": "approve", "approvals": [str(row.pk)]}
    )

    assert response.json()["results"][0]["status_code"] == 403
    row.refresh_from_db()
    assert row.status == ApprovalStatus.PENDING


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "approve", "approvals": []}, "approvals"),
        ({"action": "approve", "approvals": [str(uuid.uuid4()) for _ in range(101)]}, "approvals"),
        ({"action": "approve", "approvals": ["not-a-uuid"]}, "approvals[0]"),
        ({"action": "approve", "approvals": "everything"}, "approvals"),
        ({"action": "approve"}, "approvals"),
        ({"action": "delegate", "approvals": [str(uuid.uuid4())]}, "action"),
        ({"action": "request_changes", "approvals": [str(uuid.uuid4())]}, "action"),
        ({"approvals": [str(uuid.uuid4())]}, "action"),
        (
            {"action": "approve", "approvals": [str(uuid.uuid4())], "comments": "x" * 5001},
            "comments",
        ),
    ],
)
def test_malformed_requests_are_400_and_decide_nothing(legal_client, tenant, body, field):
    waiting_rows(tenant, 1)

    response = legal_client.post(URL, body)

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["fields"]
    assert not WorkflowStageApproval.objects.filter(status=ApprovalStatus.APPROVED).exists()


def test_an_approval_named_twice_is_400(legal_client, tenant):
    [row] = waiting_rows(tenant, 1)

    response = legal_client.post(URL, {"action": "approve", "approvals": [str(row.pk)] * 2})

    assert response.status_code == 400
    assert response.json()["fields"]["approvals"] == ["Name each approval once."]
    row.refresh_from_db()
    assert row.status == ApprovalStatus.PENDING


def test_a_hundred_rows_are_accepted(legal_client, tenant):
    rows = waiting_rows(tenant, 2)
    padding = [str(uuid.uuid4()) for _ in range(98)]

    response = legal_client.post(URL, {"action": "approve", "approvals": ids(rows) + padding})

    codes = [result["status_code"] for result in response.json()["results"]]
    assert codes == [200, 200] + [404] * 98


def test_a_retry_with_the_same_idempotency_key_decides_nothing_twice(legal_client, tenant):
    rows = waiting_rows(tenant, 2)
    body = {"action": "approve", "approvals": ids(rows)}

    first = legal_client.post(URL, body, HTTP_IDEMPOTENCY_KEY="bulk-1")
    again = legal_client.post(URL, body, HTTP_IDEMPOTENCY_KEY="bulk-1")

    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert AuditLog.objects.filter(action="approval_approved").count() == 2


def test_each_row_costs_the_same_number_of_queries(legal_client, tenant):
    """The cost is a fixed part plus a fixed amount per row (no query grows with the batch)."""
    rows = waiting_rows(tenant, 7)

    def cost(batch) -> int:
        with CaptureQueriesContext(connection) as queries:
            response = legal_client.post(URL, {"action": "approve", "approvals": ids(batch)})
        assert {r["status_code"] for r in response.json()["results"]} == {200}
        return len(queries)

    one, two, four = cost(rows[:1]), cost(rows[1:3]), cost(rows[3:7])

    per_row = two - one
    assert four - two == 2 * per_row
    assert (one, per_row) == (ONE_ROW_QUERIES, PER_ROW_QUERIES)


# Round trips: a decision's writes, and its receivers', travel with the RELEASE of its
# savepoint (core.pipeline.atomic).
ONE_ROW_QUERIES = 7  # authentication, the ids' contracts, one decision
PER_ROW_QUERIES = 5  # one decision (approval_act, in a savepoint here)
