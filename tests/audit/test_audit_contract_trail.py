"""One trail per contract: every audit row carries the contract it is about (`contract`), and
`GET /api/audit-logs/?contract=<id>` lists the rows about the contract, its workflow instances,
stages and approvals, in the listing's order and with its cursor."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from approvals import lifecycle as contract_services
from approvals.models import WorkflowInstance, WorkflowStage, WorkflowStageApproval
from approvals.services import sla_check_breaches, sla_rule_create
from audit.models import AuditLog
from audit.services import audit_record, audit_record_many
from core import rls
from tests.factories import ContractFactory, UserFactory
from tests.fixtures import define, holder, pending_approvals, stage, start
from workflows import services as workflow_services

pytestmark = pytest.mark.django_db

URL = "/api/audit-logs/"
TRAIL_TYPE = "TRAIL"
EMPTY = {"next": None, "previous": None, "results": []}


def listed(client, params, page_size=50) -> list[dict]:
    """Every row the listing returns for ``params``, following `next` links."""
    rows, pages = [], 0
    response = client.get(URL, {"page_size": page_size, **params})
    while True:
        assert response.status_code == 200, response.content
        rows += response.json()["results"]
        if response.json()["next"] is None:
            return rows
        pages += 1
        assert pages < 100, "the cursor does not advance"
        response = client.get(response.json()["next"])


@pytest.fixture
def one_stage_definition(tenant):
    return workflow_services.definition_create(
        tenant=tenant,
        created_by=UserFactory(tenant=tenant, is_tenant_admin=True),
        name="Trail",
        trigger_conditions={"contract_type": TRAIL_TYPE},
        stages=[
            {
                "stage_name": "Legal",
                "sequence": 1,
                "approvers": ["legal"],
                "approval_type": "all",
                "sla_hours": 24,
                "is_required": True,
            }
        ],
    )


@pytest.fixture
def people(tenant, role_holder, api_client_for):
    requester, legal = UserFactory(tenant=tenant), role_holder("legal")
    return {"requester": api_client_for(requester), "legal": api_client_for(legal)}


def create_and_approve(people, title: str) -> str:
    """POST /api/contracts/ (the workflow starts with it), then the one approver approves."""
    created = people["requester"].post(
        "/api/contracts/", {"title": title, "contract_type": TRAIL_TYPE}, format="json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["status"] == "in_review"
    contract_id = created.json()["id"]
    approved = people["legal"].post(
        f"/api/contracts/{contract_id}/approve/", {"action": "approve"}, format="json"
    )
    assert approved.status_code == 200, approved.content
    assert approved.json()["status"] == "completed"
    return contract_id


# Newest first: the approval's INSERT, then the create's, each in reverse of writing.
TRAIL = [
    ("workflow_completed", "workflowinstance"),
    ("stage_completed", "workflowstage"),
    ("approval_approved", "workflowstageapproval"),
    ("stage_started", "workflowstage"),
    ("workflow_started", "workflowinstance"),
    ("contract_created", "contract"),
]


def test_a_contracts_trail_is_its_rows_in_order(auditor_client, one_stage_definition, people):
    contract_id = create_and_approve(people, "Ours")
    other_id = create_and_approve(people, "Theirs")
    instance = WorkflowInstance.objects.get(contract_id=contract_id)
    stage_id = str(WorkflowStage.objects.get(instance=instance).pk)
    approval_id = str(WorkflowStageApproval.objects.get(instance=instance).pk)

    rows = listed(auditor_client, {"contract": contract_id})

    assert [(row["action"], row["resource_type"]) for row in rows] == TRAIL
    assert [row["resource_id"] for row in rows] == [
        str(instance.pk),
        stage_id,
        approval_id,
        stage_id,
        str(instance.pk),
        contract_id,
    ]
    assert {row["contract"] for row in rows} == {contract_id}
    theirs = listed(auditor_client, {"contract": other_id})
    assert [(row["action"], row["resource_type"]) for row in theirs] == TRAIL
    assert not {row["id"] for row in rows} & {row["id"] for row in theirs}
    # The unfiltered listing holds both trails, in the same order.
    everything = [row["id"] for row in listed(auditor_client, {})]
    assert [row_id for row_id in everything if row_id in {row["id"] for row in rows}] == [
        row["id"] for row in rows
    ]


def test_paging_a_trail_yields_every_row_once_in_order(
    auditor_client, one_stage_definition, people
):
    contract_id = create_and_approve(people, "Paged")
    create_and_approve(people, "Noise")
    whole = [row["id"] for row in listed(auditor_client, {"contract": contract_id})]
    assert len(whole) == len(TRAIL)

    for page_size in (1, 2, 4):
        paged = [row["id"] for row in listed(auditor_client, {"contract": contract_id}, page_size)]
        assert paged == whole, page_size

    # And back: `previous` from the last page returns the same pages in reverse.
    response = auditor_client.get(URL, {"contract": contract_id, "page_size": 4})
    first_page = [row["id"] for row in response.json()["results"]]
    response = auditor_client.get(response.json()["next"])
    assert [row["id"] for row in response.json()["results"]] == whole[4:]
    response = auditor_client.get(response.json()["previous"])
    assert [row["id"] for row in response.json()["results"]] == first_page


def test_the_filter_combines_with_the_others(auditor_client, one_stage_definition, people):
    contract_id = create_and_approve(people, "Combined")
    rows = listed(auditor_client, {"contract": contract_id, "resource_type": "workflowstage"})
    assert [row["action"] for row in rows] == ["stage_completed", "stage_started"]
    rows = listed(auditor_client, {"contract": contract_id, "action": "contract_created"})
    assert [row["resource_id"] for row in rows] == [contract_id]


def test_a_draft_contracts_update_is_on_its_trail(auditor_client, tenant, api_client_for):
    requester = UserFactory(tenant=tenant)
    client = api_client_for(requester)
    created = client.post(
        "/api/contracts/", {"title": "Draft", "contract_type": "NONE"}, format="json"
    )
    assert created.json()["status"] == "draft"
    contract_id = created.json()["id"]
    renamed = client.patch(f"/api/contracts/{contract_id}/", {"title": "Renamed"}, format="json")
    assert renamed.status_code == 200, renamed.content

    rows = listed(auditor_client, {"contract": contract_id})
    assert [row["action"] for row in rows] == ["contract_updated", "contract_created"]


def test_another_tenants_contract_yields_no_rows(auditor_client, other_tenant, tenant):
    creator = UserFactory(tenant=other_tenant)
    with rls.tenant_scope(other_tenant):
        theirs = contract_services.contract_create(
            tenant=other_tenant, created_by=creator, title="Theirs", contract_type="NONE"
        )
        assert AuditLog.objects.filter(contract=theirs.pk).exists()
    audit_record(action="login", tenant=tenant)  # ours, about no contract

    for contract_id in (theirs.pk, uuid.uuid4()):
        response = auditor_client.get(URL, {"contract": str(contract_id)})
        assert response.status_code == 200, response.content
        assert response.json() == EMPTY


@pytest.mark.parametrize("value", ["not-a-uuid", "1", "' OR 1=1 --", "%", "{}"])
def test_a_malformed_contract_id_is_a_400_naming_it(auditor_client, tenant, value):
    audit_record(action="login", tenant=tenant)
    response = auditor_client.get(URL, {"contract": value})
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    assert list(body["fields"]) == ["contract"]


# --- the SLA check (raw SQL) ------------------------------------------------------------------


def test_the_sla_checks_rows_carry_the_contract(auditor_client, tenant):
    sla_rule_create(
        tenant=tenant,
        created_by=UserFactory(tenant=tenant, is_tenant_admin=True),
        contract_type="SLA",
        stage_name="Legal Review",
        sla_hours=10,
        escalation_enabled=True,
        escalate_to_role="legal-lead",
    )
    define(tenant, [stage("Legal Review", ["legal"])])
    holder(tenant, "legal")
    contracts = [start(tenant, title=title) for title in ("Late", "Also late")]
    approvals = {contract.pk: pending_approvals(contract)[0] for contract in contracts}
    now = max(approval.due_at for approval in approvals.values()) + timedelta(seconds=1)

    assert sla_check_breaches(tenant=tenant, now=now).breached == 2

    written = AuditLog.objects.filter(action__in=["sla_breached", "sla_escalated"])
    assert written.count() == 4
    for row in written:
        approval = WorkflowStageApproval.objects.get(pk=row.resource_id)
        assert row.contract == approval.contract_id
    for contract in contracts:
        rows = listed(auditor_client, {"contract": str(contract.pk)})
        actions = [row["action"] for row in rows]
        assert actions[:2] == ["sla_escalated", "sla_breached"]
        assert actions[-3:] == ["stage_started", "workflow_started", "contract_created"]
        assert {row["resource_id"] for row in rows[:2]} == {str(approvals[contract.pk].pk)}


# --- how audit.services derives the contract --------------------------------------------------


def _one_insert(write):
    """Run ``write()``; it must send exactly one statement, the INSERT."""
    with CaptureQueriesContext(connection) as queries:
        result = write()
    statements = [query["sql"] for query in queries.captured_queries]
    assert len(statements) == 1, statements
    assert "INSERT INTO" in statements[0]
    return result


def test_the_contract_is_derived_from_the_resource_without_a_query(tenant, user):
    contract = start_with_workflow(tenant)
    instance = WorkflowInstance.objects.get(contract=contract)
    stage_row = instance.stages.get()  # its instance is cached by the related manager
    approval = WorkflowStageApproval.objects.get(instance=instance)

    for resource in (contract, instance, stage_row, approval):
        row = _one_insert(lambda r=resource: audit_record(action="x", tenant=tenant, resource=r))
        assert row.contract == contract.pk, resource

    for resource in (user, None):
        row = _one_insert(lambda r=resource: audit_record(action="x", tenant=tenant, resource=r))
        assert row.contract is None


def test_a_stage_without_its_instance_loaded_costs_no_query_and_names_no_contract(tenant):
    contract = start_with_workflow(tenant)
    bare = WorkflowStage.objects.get(instance__contract=contract)  # instance not loaded
    row = _one_insert(lambda: audit_record(action="x", tenant=tenant, resource=bare))
    assert row.contract is None
    # Named explicitly, it is recorded.
    row = audit_record(action="x", tenant=tenant, resource=bare, contract=contract.pk)
    assert row.contract == contract.pk


def test_an_explicit_contract_overrides_the_derived_one(tenant):
    contract = start_with_workflow(tenant)
    other = ContractFactory(created_by=UserFactory(tenant=tenant))
    instance = WorkflowInstance.objects.get(contract=contract)

    assert audit_record(action="x", tenant=tenant, resource=instance, contract=other).contract == (
        other.pk
    )
    assert audit_record(action="x", tenant=tenant, resource=instance, contract=None).contract is (
        None
    )
    named = audit_record(action="x", tenant=tenant, resource_type="contract", contract=other.pk)
    assert named.contract == other.pk

    rows = audit_record_many(
        [
            {"action": "derived", "tenant": tenant, "resource": instance},
            {"action": "named", "tenant": tenant, "resource": instance, "contract": other},
            {"action": "none", "tenant": tenant, "resource": instance, "contract": None},
        ]
    )
    assert [row.contract for row in rows] == [contract.pk, other.pk, None]


def start_with_workflow(tenant):
    define(tenant, [stage("Legal Review", ["legal"], sla_hours=24)], contract_type="DERIVE")
    holder(tenant, "legal")
    return start(tenant, contract_type="DERIVE")


# --- the admin ----------------------------------------------------------------------------------


def test_the_admin_lists_searches_and_filters_by_contract(tenant, one_stage_definition, people):
    browser = Client()
    browser.force_login(UserFactory(tenant=tenant, is_tenant_admin=True, is_staff=True))
    contract_id = create_and_approve(people, "Admin")
    other_id = create_and_approve(people, "Other")

    listing = browser.get("/admin/audit/auditlog/")
    assert listing.status_code == 200
    assert "column-contract" in listing.content.decode()

    for params in ({"q": contract_id}, {"contract": contract_id}):
        response = browser.get("/admin/audit/auditlog/", params)
        assert response.status_code == 200
        shown = {row.pk for row in response.context["cl"].result_list}
        assert shown == set(
            AuditLog.objects.filter(contract=contract_id).values_list("pk", flat=True)
        )
        assert len(shown) == len(TRAIL)
        assert not shown & set(
            AuditLog.objects.filter(contract=other_id).values_list("pk", flat=True)
        )
