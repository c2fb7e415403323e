"""Query budgets of the workflow paths: the same count for 1 as for 50 definitions/holders/rows.

Each test builds its scenario at size `n`, warms the path up once (so per-process caches are
filled in both cases), then asserts the exact count with `django_assert_num_queries`. The counts
are round trips: they include the JWT user lookup; the writes the orchestrator queues
(core.pipeline) and the receivers' savepoint travel with the next statement and are not
counted on their own. A change that legitimately adds a query updates the number and says why.
A count that grows with `n` is an N+1 in a selector or a receiver: fix the prefetch, not the
number.
"""

import uuid
from decimal import Decimal

import pytest

from approvals.lifecycle import contract_create
from tests.factories import UserFactory, UserRoleFactory
from workflows.services import definition_create

pytestmark = pytest.mark.django_db

SIZES = [1, 50]
MATCHING_TYPE = "QC-MSA"


def define(tenant, *, priority=0, trigger_conditions=None, stages=None, name=None):
    return definition_create(
        tenant=tenant,
        created_by=UserFactory(tenant=tenant),
        name=name or f"Budget {uuid.uuid4().hex[:8]}",
        priority=priority,
        trigger_conditions={"contract_type": MATCHING_TYPE}
        if trigger_conditions is None
        else trigger_conditions,
        stages=stages
        or [
            {"stage_name": "Review", "sequence": 1, "approvers": ["legal", "finance"]},
            {"stage_name": "Sign-off", "sequence": 2, "approvers": ["ceo"], "sla_hours": 24},
        ],
    )


def holders(tenant, role, n):
    return [UserRoleFactory(user=UserFactory(tenant=tenant), role=role).user for _ in range(n)]


def new_contract(tenant, creator=None, **fields):
    return contract_create(
        tenant=tenant,
        created_by=creator or UserFactory(tenant=tenant),
        title=fields.pop("title", "Budgeted"),
        contract_type=fields.pop("contract_type", MATCHING_TYPE),
        value=Decimal("1000.00"),
        **fields,
    )


# Measured: 6 for W=1 and for W=50 (rules compiled and the SLA policy cached by the warm-up).
# The match engine lists the active definitions in one query whatever W; then clause
# validation, the version with the roles of its stages someone but the creator holds (a role
# nobody else holds goes to a tenant admin), and the end of the transaction (here the RELEASE of
# its savepoint, in production the COMMIT) carrying every write of the start (revision 1,
# contract, instance, stages, approvals, audit), the receivers' savepoint and their fan-out
# statement (approvers resolved inside it). The response's workflow summary reads nothing: the
# service hands over the instance it started. (17 when each write was its own round trip; 9
# while revision 1 was an INSERT of its own; 8 while the roles held were a read of their own;
# 7 while the fan-out statement was sent on its own.)
CONTRACT_CREATE_WITH_AUTO_START = 6


@pytest.mark.parametrize("w", SIZES)
def test_contract_create_with_auto_start(w, tenant, api_client_for, django_assert_num_queries):
    holders(tenant, "legal", 3)
    holders(tenant, "finance", 3)
    # W - 1 higher-priority definitions that do not match, then the one that does: the engine
    # has to look at all of them.
    for index in range(w - 1):
        define(
            tenant,
            priority=100 + index,
            trigger_conditions={"any": [{"contract_type": "NDA"}, {"value__gte": 10**9}]},
            stages=[
                {"stage_name": f"S{step}", "sequence": step, "approvers": ["legal"]}
                for step in (1, 2, 3)
            ],
        )
    matching = define(tenant, priority=0)
    client = api_client_for(UserFactory(tenant=tenant))
    body = {"title": "Budgeted", "contract_type": MATCHING_TYPE, "value": "1000"}
    assert client.post("/api/contracts/", body, format="json").status_code == 201  # warm-up

    with django_assert_num_queries(CONTRACT_CREATE_WITH_AUTO_START):
        response = client.post("/api/contracts/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["workflow"]["definition"]["id"] == str(matching.pk)


# Measured: 6 moving to the next stage and 6 completing the workflow (the documents
# receivers queue the approval certificate with the notifications; the signers they look for
# are in the definition version, read with the instance), for 1 and for 50
# holders of each role (the assignment notifications to the next stage's holders are bulk).
# The contract row is locked first (every writer of a contract's workflow takes that lock first,
# so a decision reads the current revision and cannot deadlock with an edit), in the round trip
# of the read of the open instance with its stages and their rows, and the roles of each waiting
# stage someone but the creator holds (what opening it needs); the decision's writes and the
# receivers' travel with the end of the transaction (here the RELEASE of its savepoint, in
# production the COMMIT); the answer reads the workflow status in two
# (20 and 18 when each write was its own round trip; 12 and 13 reading stages and rows apart;
# completing was 12 while the signers' lookup read the version again; 11 and 11 while the lock
# was a round trip of its own; 10 and 10 while opening a stage asked for its held roles; 9 and
# 10 while the answer read stages and approvals apart; 8 and 9 while the instance and its
# stages were two reads; 7 and 8 while the receivers' statements were sent on their own).
APPROVE_ADVANCING = 6
APPROVE_COMPLETING = 6


@pytest.mark.parametrize("n", SIZES)
def test_approve_with_many_role_holders(n, tenant, api_client_for, django_assert_num_queries):
    legal, ceo = holders(tenant, "legal", n), holders(tenant, "ceo", n)
    define(
        tenant,
        stages=[
            {"stage_name": "Review", "sequence": 1, "approvers": ["legal"], "approval_type": "any"},
            {"stage_name": "Sign-off", "sequence": 2, "approvers": ["ceo"], "sla_hours": 24},
        ],
    )
    warm_up, measured = new_contract(tenant), new_contract(tenant)
    # Clients (and their tokens) are made before measuring: only the request counts.
    clients = {user: api_client_for(user) for user in (legal[0], ceo[0], legal[-1], ceo[-1])}

    def approve(user, contract):
        return clients[user].post(
            f"/api/contracts/{contract.pk}/approve/", {"action": "approve"}, format="json"
        )

    assert approve(legal[0], warm_up).json()["current_stage"] == 2
    assert approve(ceo[0], warm_up).json()["status"] == "completed"

    with django_assert_num_queries(APPROVE_ADVANCING):
        response = approve(legal[-1], measured)
    assert response.status_code == 200, response.json()
    assert response.json()["current_stage"] == 2
    with django_assert_num_queries(APPROVE_COMPLETING):
        response = approve(ceo[-1], measured)
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "completed"


# Measured: 5 queries for 2 and for 100 rows (user, roles, count, page with stage and contract,
# and whether an out-of-office window has started whose rows must move to the cover first).
PENDING_LIST = 5
APPROVAL_LIST = 5


@pytest.mark.parametrize("n", SIZES)
def test_pending_approvals_list(n, tenant, api_client_for, django_assert_num_queries):
    viewer = UserRoleFactory(user=UserFactory(tenant=tenant), role="legal").user
    define(
        tenant,
        stages=[
            {
                "stage_name": "Review",
                "sequence": 1,
                "approvers": ["legal", f"user:{viewer.pk}"],
                "sla_hours": 8,
            },
            {"stage_name": "Sign-off", "sequence": 2, "approvers": ["ceo"]},
        ],
    )
    for index in range(n):  # each contract has its own creator
        new_contract(tenant, title=f"Pending {index}")
    client = api_client_for(viewer)
    assert client.get("/api/approvals/pending/").status_code == 200  # warm-up

    with django_assert_num_queries(PENDING_LIST):
        response = client.get("/api/approvals/pending/")
    assert response.status_code == 200
    assert response.json()["count"] == 2 * n
    with django_assert_num_queries(APPROVAL_LIST):
        response = client.get("/api/approvals/")
    assert response.json()["count"] == 2 * n


# Measured: 4 queries for 1 and for 50 contracts with workflows (user, count, page, instances
# with their definition versions prefetched).
CONTRACT_LIST_WITH_WORKFLOWS = 4


@pytest.mark.parametrize("n", SIZES)
def test_contract_list_with_workflows(n, tenant, api_client_for, django_assert_num_queries):
    holders(tenant, "legal", 1)  # the started workflows notify a role holder
    define(tenant)
    viewer = UserFactory(tenant=tenant)
    for index in range(n):
        contract = new_contract(tenant, title=f"Listed {index}")
        if index % 3 == 1:  # some cancelled, some restarted: several instances per contract
            from approvals.orchestrator import workflow_cancel, workflow_start

            workflow_cancel(tenant=tenant, contract_id=contract.pk, actor=contract.created_by)
            workflow_start(contract=contract, started_by=contract.created_by)
        new_contract(tenant, title=f"Draft {index}", contract_type="NDA")
    client = api_client_for(viewer)
    assert client.get("/api/contracts/").status_code == 200  # warm-up

    with django_assert_num_queries(CONTRACT_LIST_WITH_WORKFLOWS):
        response = client.get("/api/contracts/", {"page_size": 200})
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 2 * n
    assert sum(row["workflow"] is not None for row in results) == n


# Measured: 4 queries for 1 and for 50 definitions (user, count, page with creator, stages).
DEFINITION_LIST = 4


@pytest.mark.parametrize("n", SIZES)
def test_workflow_definition_list(n, tenant, api_client_for, django_assert_num_queries):
    for index in range(n):  # each with its own creator and three stages
        define(
            tenant,
            name=f"Definition {index}",
            stages=[
                {"stage_name": f"S{step}", "sequence": step, "approvers": ["legal", "cfo"]}
                for step in (1, 2, 3)
            ],
        )
    client = api_client_for(UserFactory(tenant=tenant))
    assert client.get("/api/workflows/config/").status_code == 200  # warm-up

    with django_assert_num_queries(DEFINITION_LIST):
        response = client.get("/api/workflows/config/")
    assert response.status_code == 200
    assert response.json()["count"] == n
    assert all(len(row["stages"]) == 3 for row in response.json()["results"])


# Measured: the same count for 1 and for 50 holders of the re-opened stage's role and as many
# earlier revisions: the contract locked and read once, the revision written, the open instance,
# its stages with their rows (one query), the match engine (cached rules), one UPDATE each for
# the superseded rows and the stages, one INSERT each for the fresh rows and the audit rows, and
# the notifications (the superseded decider and the role's holders) in the receivers' bulk
# statements, and which of the re-opened stage's roles someone but the creator holds. (18 while
# a block's last writes waited for a round trip of their own at its end: now the next round
# trip waits for them, already sent, core.pipeline.)
EDIT_IN_REVIEW_WITH_RESET = 17
# Measured: user, the contract's existence, count, page (creators joined): 4 for 1 and for 50.
REVISION_LIST = 4


@pytest.mark.parametrize("n", SIZES)
def test_edit_in_review_reopening_a_stage(n, tenant, api_client_for, django_assert_num_queries):
    legal = holders(tenant, "legal", n)
    holders(tenant, "ceo", n)
    define(
        tenant,
        stages=[
            {"stage_name": "Review", "sequence": 1, "approvers": ["legal"], "approval_type": "any"},
            {"stage_name": "Sign-off", "sequence": 2, "approvers": ["ceo"], "sla_hours": 24},
        ],
    )
    creator = UserFactory(tenant=tenant)
    client = api_client_for(creator)
    warm_up, measured = new_contract(tenant, creator), new_contract(tenant, creator)
    for contract in (warm_up, measured):
        for index in range(n - 1):  # earlier revisions do not change the cost
            client.patch(f"/api/contracts/{contract.pk}/", {"metadata": {"draft": index}})
        approved = api_client_for(legal[-1]).post(
            f"/api/contracts/{contract.pk}/approve/", {"action": "approve"}, format="json"
        )
        assert approved.json()["current_stage"] == 2
    assert client.patch(f"/api/contracts/{warm_up.pk}/", {"text": "Warm"}).status_code == 200

    with django_assert_num_queries(EDIT_IN_REVIEW_WITH_RESET):
        response = client.patch(f"/api/contracts/{measured.pk}/", {"text": "Changed"})
    assert response.status_code == 200, response.json()
    assert (response.json()["revision"], response.json()["workflow"]["current_stage"]) == (n + 1, 1)

    with django_assert_num_queries(REVISION_LIST):
        response = client.get(f"/api/contracts/{measured.pk}/revisions/")
    assert response.json()["count"] == n + 1
